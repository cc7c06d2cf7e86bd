import Foundation

/// A scale and shift of the two candidate logits.
///
/// The two-way softmax reads only the logit difference, so the transform acts on it. The shift
/// is tied to token identity, not to correctness: with `d = logit(lower id) − logit(higher id)`
/// of a prompt's two candidates, the calibrated difference is `scale · d + shift`. A shift toward
/// "the correct token" would let any circuit reach loss 0; a shift toward one token cannot, since
/// the two prompts of a minimal pair want opposite tokens. In the correct-minus-wrong margin Δ
/// that every evaluation returns, the calibrated margin is `scale · Δ + shift · s` with s = +1 when
/// the correct token has the lower id, else −1.
///
/// The scale is kept ≥ 0: a circuit has to push the answer the model's way; a negative scale would
/// credit a circuit that argues for the wrong answer. It is also kept at most `maxScale`, which the
/// frontier sets so that a circuit's calibrated margins are no larger (in RMS over the fit pairs)
/// than the full model's, or 1 if they already are: calibration gives a circuit back the full
/// model's logit scale, never more. Without that bound, fit pairs that the margins separate drive
/// the scale up without limit, and then a single test prompt with the wrong sign costs more than
/// the whole model's loss (a dense model at task loss 0.023 scored 0.88 calibrated).
public struct LogitCalibration: Codable, Equatable, Sendable {
    public var scale: Float
    public var shift: Float

    public init(scale: Float, shift: Float) {
        self.scale = scale
        self.shift = shift
    }

    /// The uncalibrated convention.
    public static let identity = LogitCalibration(scale: 1, shift: 0)

    /// Mean over prompts of softplus(−(scale · Δ + shift · s)): the task loss under this transform.
    /// `margins` are correct-minus-wrong logit differences, `orientations` the s above.
    public func loss(margins: [Float], orientations: [Float]) -> Float {
        Float(CalibrationObjective(margins: margins, orientations: orientations).value(Double(scale), Double(shift)))
    }

    /// Fits scale in [0, maxScale] (maxScale ≥ 1) and shift by projected Newton steps with
    /// backtracking, starting from the identity, so the fitted loss is never above the
    /// uncalibrated one on the fit set. The objective is convex in (scale, shift); 16 steps reach
    /// its constrained minimum to float precision.
    public static func fit(margins: [Float], orientations: [Float], steps: Int = 16,
                           maxScale: Double = .infinity) -> LogitCalibration {
        precondition(maxScale >= 1, "the identity must stay feasible")
        let objective = CalibrationObjective(margins: margins, orientations: orientations)
        var a = 1.0, b = 0.0
        var f = objective.value(a, b)
        for _ in 0..<steps {
            let (ga, gb, haa, hab, hbb) = objective.derivatives(a, b)
            // On a bound of the scale with the gradient pointing past it, only the shift moves.
            let boundary = (a <= 0 && ga > 0) || (a >= maxScale && ga < 0)
            var da: Double, db: Double
            if boundary {
                da = 0
                db = -gb / max(hbb, 1e-12)
            } else {
                // Newton step on the 2×2 system, with a small ridge for flat directions (for
                // example every margin equal).
                let ridge = 1e-9 * max(haa + hbb, 1e-12)
                let (p, q, r) = (haa + ridge, hab, hbb + ridge)
                let det = p * r - q * q
                if det > 0 {
                    da = -(r * ga - q * gb) / det
                    db = -(p * gb - q * ga) / det
                } else {
                    (da, db) = (-ga, -gb)
                }
            }
            var t = 1.0, improved = false
            for _ in 0..<30 {
                let na = min(maxScale, max(0, a + t * da)), nb = b + t * db
                let nf = objective.value(na, nb)
                if nf < f {
                    (a, b, f, improved) = (na, nb, nf, true)
                    break
                }
                t /= 2
            }
            if !improved { break }
        }
        return LogitCalibration(scale: Float(a), shift: Float(b))
    }
}

/// mean softplus(−(a·Δ + b·s)) and its derivatives, in Double.
struct CalibrationObjective {
    let margins: [Double]
    let orientations: [Double]

    init(margins: [Float], orientations: [Float]) {
        precondition(margins.count == orientations.count && !margins.isEmpty, "one orientation per margin, at least one")
        self.margins = margins.map(Double.init)
        self.orientations = orientations.map(Double.init)
    }

    /// softplus(−z) = −log σ(z), stable for large |z|.
    static func softplusNegative(_ z: Double) -> Double { z > 0 ? log1p(exp(-z)) : -z + log1p(exp(z)) }

    func value(_ a: Double, _ b: Double) -> Double {
        var total = 0.0
        for i in margins.indices { total += Self.softplusNegative(a * margins[i] + b * orientations[i]) }
        return total / Double(margins.count)
    }

    /// Gradient (ga, gb) and Hessian (haa, hab, hbb).
    func derivatives(_ a: Double, _ b: Double) -> (Double, Double, Double, Double, Double) {
        var ga = 0.0, gb = 0.0, haa = 0.0, hab = 0.0, hbb = 0.0
        for i in margins.indices {
            let x = margins[i], s = orientations[i]
            let z = a * x + b * s
            let p = 1 / (1 + exp(z))          // σ(−z) = −d softplus(−z) / dz
            let w = p * (1 - p)
            ga -= p * x; gb -= p * s
            haa += w * x * x; hab += w * x * s; hbb += w * s * s
        }
        let n = Double(margins.count)
        return (ga / n, gb / n, haa / n, hab / n, hbb / n)
    }
}

extension LogitCalibration {
    /// The largest scale that leaves `margins` no larger in RMS than `reference` (the full model's
    /// margins on the same prompts), and at least 1.
    public static func maxScale(margins: [Float], matching reference: [Float]) -> Double {
        func rms(_ values: [Float]) -> Double {
            (values.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(values.count, 1))).squareRoot()
        }
        let own = rms(margins)
        return own > 0 ? max(1, rms(reference) / own) : 1
    }
}

extension TaskPairs {
    /// Per prompt +1 when the correct candidate has the lower token id, else −1 (see `LogitCalibration`).
    public var candidateOrientations: [Float] {
        (0..<count).map { candidates[2 * $0] < candidates[2 * $0 + 1] ? 1 : -1 }
    }
}
