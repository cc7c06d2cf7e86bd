/// The outcome of bisecting the number of kept nodes k against a target loss.
public struct BisectionResult: Equatable, Sendable {
    /// The k that bisection settles on.
    public let k: Int
    /// The loss at that k.
    public let loss: Float
    /// Every (k, loss) evaluated, in order; the first is k = N.
    public let trace: [(k: Int, loss: Float)]

    public static func == (a: BisectionResult, b: BisectionResult) -> Bool {
        a.k == b.k && a.loss == b.loss && a.trace.elementsEqual(b.trace) { $0.k == $1.k && $0.loss == $1.loss }
    }
}

/// Bisection over k in 0...n exactly as reference/README "Conventions": first loss(n) ≤ target
/// is checked (otherwise there is no circuit and the result is nil); then
/// `lo, hi = 0, n; while lo < hi { mid = (lo+hi)/2; loss(mid) ≤ target ? hi = mid : lo = mid+1 }`.
/// The loss is not monotone in k, so this is the k bisection finds, not necessarily the least k.
/// `loss` is called at most once per distinct k.
public func bisectKeptNodes(count n: Int, target: Float, loss: (Int) throws -> Float) rethrows -> BisectionResult? {
    var cache: [Int: Float] = [:]
    var trace: [(k: Int, loss: Float)] = []
    func evaluate(_ k: Int) throws -> Float {
        if let known = cache[k] { return known }
        let value = try loss(k)
        cache[k] = value
        trace.append((k, value))
        return value
    }
    guard try evaluate(n) <= target else { return nil }
    var lo = 0, hi = n
    while lo < hi {
        let mid = (lo + hi) / 2
        if try evaluate(mid) <= target { hi = mid } else { lo = mid + 1 }
    }
    return BisectionResult(k: hi, loss: try evaluate(hi), trace: trace)
}
