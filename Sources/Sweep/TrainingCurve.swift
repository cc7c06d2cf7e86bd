import Foundation
import SparseGPT

/// A model's training curve, the train shard's `training_curve` output: at every progress report
/// the step, the training loss of that step's batch, the block and embedding density, the learning
/// rate, and at every evaluation the held-out loss. A shard resumed from a checkpoint records from
/// the step it resumed at.
public struct TrainingCurve: Equatable, Sendable {
    public struct Row: Equatable, Sendable {
        public var step: Int
        public var trainLoss: Double
        public var heldOutLoss: Double?
        public var density: Double
        public var embedDensity: Double
        public var learningRate: Double

        public init(step: Int, trainLoss: Double, heldOutLoss: Double?, density: Double, embedDensity: Double, learningRate: Double) {
            self.step = step
            self.trainLoss = trainLoss
            self.heldOutLoss = heldOutLoss
            self.density = density
            self.embedDensity = embedDensity
            self.learningRate = learningRate
        }
    }

    public var rows: [Row] = []

    public init(rows: [Row] = []) { self.rows = rows }

    /// The densities are those of the step (they anneal), not the model's final ones.
    static let columns = ["step", "train_loss", "held_out_loss", "step_density", "step_embed_density", "learning_rate"]

    /// Held-out loss 20 times through training (and at every checkpoint): about 2% of the
    /// training's time for the quick sweep's 128 held-out windows.
    static func evaluateEvery(steps: Int) -> Int { max(1, steps / 20) }

    mutating func record(_ progress: TrainingProgress) {
        rows.append(Row(step: progress.step, trainLoss: Double(progress.loss), heldOutLoss: progress.heldOutLoss,
                        density: progress.density, embedDensity: progress.embedDensity, learningRate: progress.lr))
    }

    public func csv() -> String {
        var lines = [Self.columns.joined(separator: ",")]
        for r in rows {
            lines.append([String(r.step), "\(r.trainLoss)", r.heldOutLoss.map { "\($0)" } ?? "", "\(r.density)",
                          "\(r.embedDensity)", "\(r.learningRate)"].joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Reads `csv()`'s format; `source` names the file in errors.
    public static func parse(_ text: String, source: String) throws -> TrainingCurve {
        var lines = text.split(whereSeparator: \.isNewline).map(String.init)
        guard let header = lines.first, header == columns.joined(separator: ",") else {
            throw SweepError("\(source): not a training curve (its header is not \(columns.joined(separator: ",")))")
        }
        lines.removeFirst()
        let rows = try lines.enumerated().map { i, line -> Row in
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            func number(_ c: Int) throws -> Double {
                guard let x = Double(f[c]) else { throw SweepError("\(source): line \(i + 2): \(columns[c]) '\(f[c])' is not a number") }
                return x
            }
            guard f.count == columns.count, let step = Int(f[0]) else {
                throw SweepError("\(source): line \(i + 2) is not \(columns.count) fields starting with a step")
            }
            return Row(step: step, trainLoss: try number(1), heldOutLoss: f[2].isEmpty ? nil : try number(2),
                       density: try number(3), embedDensity: try number(4), learningRate: try number(5))
        }
        return TrainingCurve(rows: rows)
    }
}
