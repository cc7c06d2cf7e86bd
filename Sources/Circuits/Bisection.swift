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

/// Bisection over k in 0...n exactly as the method prescribes: first loss(n) ≤ target
/// is checked (otherwise there is no circuit and the result is nil); then
/// `lo, hi = 0, n; while lo < hi { mid = (lo+hi)/2; loss(mid) ≤ target ? hi = mid : lo = mid+1 }`.
/// The loss is not monotone in k, so this is the k bisection finds, not necessarily the least k.
///
/// With `trainedNodes` (the nodes the hard mask kept when mask training ended, τ > 0), bisection
/// starts from that k when it also reaches the target: `hi = trainedNodes`, so the circuit is the
/// trained mask or a top-k subset of it. When the trained mask misses the target it runs over the
/// whole range. Either way a model that misses the target itself has no circuit at it. Why: past the trained mask, loss(k) is far from monotone (restoring a
/// few nodes the masks learned to ablate together breaks the circuit), and bisecting from k = n
/// then climbs to nearly every node.
/// `loss` is called at most once per distinct k.
public func bisectKeptNodes(count n: Int, target: Float, trainedNodes: Int? = nil,
                            loss: (Int) throws -> Float) rethrows -> BisectionResult? {
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
    var hi = n
    if let trained = trainedNodes, trained < n, try evaluate(trained) <= target { hi = trained }
    var lo = 0
    while lo < hi {
        let mid = (lo + hi) / 2
        if try evaluate(mid) <= target { hi = mid } else { lo = mid + 1 }
    }
    return BisectionResult(k: hi, loss: try evaluate(hi), trace: trace)
}
