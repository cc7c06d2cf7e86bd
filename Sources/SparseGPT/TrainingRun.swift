import Foundation
import Yams

/// A model and training configuration together, as in a run file: one flat mapping with the
/// reference's keys (`d_model`, `n_layer`, `density`, `embed_density`, `lr`, `steps`, ...).
public struct RunConfig: Equatable, Sendable {
    public var model: ModelConfig
    public var training: TrainingConfig

    public init(model: ModelConfig = ModelConfig(), training: TrainingConfig = TrainingConfig()) {
        self.model = model
        self.training = training
    }

    static let knownKeys: Set<String> = Set(["vocab", "context", "d_model", "n_layer", "d_head", "afrac", "density", "embed_density",
                                             "lr", "steps", "batch", "seed", "beta1", "beta2", "adam_eps", "weight_decay",
                                             "grad_eps", "min_per_neuron", "warmup_frac", "anneal_start", "anneal_end"])

    /// Parses a YAML run file; unknown keys and ill-typed values are errors naming the file and key.
    public static func fromYAML(_ text: String, file: String) throws -> RunConfig {
        let node: Any?
        do { node = try Yams.load(yaml: text) } catch {
            throw SparseGPTError.invalidConfig("\(file): not valid YAML (\(error))")
        }
        guard let map = node as? [String: Any] else { throw SparseGPTError.invalidConfig("\(file): expected a mapping of settings") }
        if let unknown = map.keys.sorted().first(where: { !knownKeys.contains($0) }) {
            throw SparseGPTError.invalidConfig("\(file): unknown key \(unknown) (known: \(knownKeys.sorted().joined(separator: ", ")))")
        }
        do {
            let model = try YAMLDecoder().decode(ModelConfig.self, from: text)
            let training = try YAMLDecoder().decode(TrainingConfig.self, from: text)
            return RunConfig(model: model, training: training)
        } catch let DecodingError.typeMismatch(_, context) {
            throw SparseGPTError.invalidConfig("\(file): key \(context.codingPath.map(\.stringValue).joined(separator: ".")) has the wrong type")
        } catch {
            throw SparseGPTError.invalidConfig("\(file): \(error)")
        }
    }
}

/// One progress report of a training run.
public struct TrainingProgress: Sendable {
    /// Optimizer steps done, of `steps`.
    public var step: Int
    public var steps: Int
    public var loss: Float
    public var lr: Double
    /// Block and embedding density the last projection kept.
    public var density: Double
    public var embedDensity: Double
    /// Nonzero parameters now.
    public var nonzero: Int
    /// Training tokens per second over this run's steps so far (held-out evaluation excluded).
    public var tokensPerSecond: Double
    /// Estimated seconds to the end of the run.
    public var etaSeconds: Double
    /// Held-out loss, on the steps where it was evaluated.
    public var heldOutLoss: Double?
}

/// Trains a model on token windows, reports progress, evaluates held-out loss; resumes exactly
/// from a checkpoint (batches depend only on the seed and the step).
public final class TrainingRun {
    public let trainer: Trainer
    public let data: TokenWindows
    /// Held-out windows of context + 1 tokens, row-major.
    public let heldOut: [Int32]?

    public init(trainer: Trainer, data: TokenWindows, heldOut: [Int32]?) throws {
        guard data.length == trainer.model.config.context else {
            throw SparseGPTError.badInput("training windows of \(data.length) tokens for a context of \(trainer.model.config.context)")
        }
        if let heldOut {
            guard !heldOut.isEmpty, heldOut.count % (data.length + 1) == 0 else {
                throw SparseGPTError.badInput("held-out tokens (\(heldOut.count)) are not whole windows of \(data.length + 1)")
            }
        }
        self.trainer = trainer
        self.data = data
        self.heldOut = heldOut
    }

    /// Mean held-out loss of the current weights, or nil without held-out data.
    public func evaluateHeldOut() throws -> Double? {
        guard let heldOut else { return nil }
        let length = data.length
        return try trainer.heldOutLoss(windows: heldOut, count: heldOut.count / (length + 1), length: length)
    }

    /// Runs steps until `trainer.step == endStep` (default: the configured total). Calls `progress`
    /// every `reportEvery` steps and after the last, with the held-out loss every `evaluateEvery`
    /// steps (0: only after the last step).
    public func run(until endStep: Int? = nil, reportEvery: Int = 1, evaluateEvery: Int = 0,
                    progress: (TrainingProgress) -> Void = { _ in }) throws {
        let config = trainer.config
        let end = min(endStep ?? config.steps, config.steps)
        let length = data.length
        let startStep = trainer.step
        var trainSeconds = 0.0
        while trainer.step < end {
            let t = trainer.step
            let batch = data.batch(step: t, seed: config.seed, size: config.batch)
            let clock = DispatchTime.now().uptimeNanoseconds
            let report = try trainer.step(inputs: batch.inputs, targets: batch.targets, batch: config.batch, length: length)
            trainSeconds += Double(DispatchTime.now().uptimeNanoseconds - clock) * 1e-9
            let done = trainer.step
            let isLast = done == end
            guard isLast || done % max(1, reportEvery) == 0 || (evaluateEvery > 0 && done % evaluateEvery == 0) else { continue }
            let evaluate = isLast || (evaluateEvery > 0 && done % evaluateEvery == 0)
            let secondsPerStep = trainSeconds / Double(done - startStep)
            let w = trainer.model.parameters.pointer
            var nonzero = 0
            for i in 0..<trainer.model.parameters.count where w[i] != 0 { nonzero += 1 }
            progress(TrainingProgress(step: done, steps: config.steps, loss: report.loss, lr: report.lr, density: report.density,
                                      embedDensity: report.embedDensity, nonzero: nonzero,
                                      tokensPerSecond: Double(config.batch * length) / secondsPerStep,
                                      etaSeconds: secondsPerStep * Double(end - done),
                                      heldOutLoss: evaluate ? try evaluateHeldOut() : nil))
        }
    }
}
