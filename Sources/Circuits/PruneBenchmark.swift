import Foundation
import SparseGPT

/// The reference's toy "opener" task at any scale (sparse_gpt.py `opener_corpus`/`opener_pairs`):
/// token 1 or 2 opens a sequence of filler tokens, and query token 3 is answered by 4 after
/// opener 1 and 5 after opener 2. A model must carry the opener across the filler, which gives
/// a real circuit to find; the benchmark uses it so that it needs no corpus.
public struct OpenerTask {
    public let vocab: Int
    public let context: Int

    public init(vocab: Int, context: Int) throws {
        guard vocab > 7, context >= 6 else {
            throw CircuitError.invalidSettings("the opener task needs vocab > 7 and context ≥ 6, got \(vocab) and \(context)")
        }
        self.vocab = vocab
        self.context = context
    }

    /// `count` training sequences of context + 1 tokens each, concatenated.
    public func corpus(sequences count: Int, seed: UInt64) -> [Int32] {
        var rng = RandomGenerator(seed: seed, stream: 0x09E4)
        var out: [Int32] = []
        out.reserveCapacity(count * (context + 1))
        for _ in 0..<count {
            var sequence = (0...context).map { _ in Int32(6 + rng.below(vocab - 6)) }
            let opener = Int32(rng.below(2))
            sequence[0] = 1 + opener
            for _ in 0..<3 {
                let position = 1 + rng.below(context - 1)
                sequence[position] = 3
                sequence[position + 1] = 4 + opener
            }
            out += sequence
        }
        return out
    }

    /// `count` minimal pairs: A = [1, filler, 3] → 4 (alt 5), B = [2, same filler, 3] → 5 (alt 4),
    /// lengths uniform in 6...context.
    public func pairs(count: Int, seed: UInt64) throws -> TaskPairs {
        var rng = RandomGenerator(seed: seed, stream: 0x9A1F)
        var prompts = [Int32](repeating: 0, count: 2 * count * context), lengths: [Int32] = [], candidates: [Int32] = []
        for i in 0..<count {
            let length = 6 + rng.below(context - 5)
            let filler = (0..<(length - 2)).map { _ in Int32(6 + rng.below(vocab - 6)) }
            for (j, opener) in [Int32(1), 2].enumerated() {
                let row = (2 * i + j) * context
                prompts[row] = opener
                for (t, token) in filler.enumerated() { prompts[row + 1 + t] = token }
                prompts[row + length - 1] = 3
                lengths.append(Int32(length))
                candidates += j == 0 ? [4, 5] : [5, 4]
            }
        }
        return try TaskPairs(width: context, prompts: prompts, lengths: lengths, candidates: candidates)
    }
}

/// `circuitry bench prune`: the seconds of one (model, task) frontier against the seconds to train
/// that model, on the opener task.
public struct PruneBenchmark {
    public var model = ModelConfig(vocab: 512, context: 64, dModel: 64, nLayer: 2, afrac: 0.25)
    /// The paper sweep's training length (sweeps/paper.yaml) at the sparsest density d_model 64 allows.
    public var training = TrainingConfig(density: 0.25, steps: 6000, batch: 32, seed: 1)
    public var frontier = FrontierSettings()
    public var trainPairs = 2048
    public var testPairs = 512
    public var meanWindows = 256
    /// Threads for training (OpenBLAS and the engine's loops) and parallel λ runs for pruning.
    public var threads = 2

    public init() {}

    public struct Result: Encodable {
        public let dModel: Int
        public let density: Double
        public let trainSteps: Int
        public let trainBatch: Int
        public let trainSeconds: Double
        public let heldOutLoss: Double
        public let meansSeconds: Double
        public let frontierSeconds: Double
        /// frontier seconds / train seconds (the goal: well under 1/3).
        public let frontierOverTrain: Double
        /// Process CPU seconds (all threads) of training and of the frontier, and their ratio: less
        /// sensitive than wall time to other processes on the machine.
        public let trainCPUSeconds: Double
        public let frontierCPUSeconds: Double
        public let frontierCPUOverTrainCPU: Double
        public let lambdas: Int
        public let maskSteps: Int
        public let batchPairs: Int
        public let meanPromptLength: Double
        public let fullTaskLoss: Float
        public let edgesAtTarget: [String: Int?]
        public let threads: Int

        enum CodingKeys: String, CodingKey {
            case dModel = "d_model", density, trainSteps = "train_steps", trainBatch = "train_batch"
            case trainSeconds = "train_seconds", heldOutLoss = "held_out_loss", meansSeconds = "means_seconds"
            case frontierSeconds = "frontier_seconds", frontierOverTrain = "frontier_over_train", lambdas
            case trainCPUSeconds = "train_cpu_seconds", frontierCPUSeconds = "frontier_cpu_seconds"
            case frontierCPUOverTrainCPU = "frontier_cpu_over_train_cpu"
            case maskSteps = "mask_steps", batchPairs = "batch_pairs", meanPromptLength = "mean_prompt_length"
            case fullTaskLoss = "full_task_loss", edgesAtTarget = "edges_at_target", threads
        }
    }

    /// Trains the model on the opener corpus (timed), computes node means (timed), and runs one
    /// frontier on the opener task (timed).
    public func run(progress: ((String) -> Void)? = nil) throws -> Result {
        try training.validate(for: model)
        let task = try OpenerTask(vocab: model.vocab, context: model.context)
        let stream = try TokenWindows(tokens: task.corpus(sequences: 4096, seed: training.seed), length: model.context,
                                      vocab: model.vocab, name: "opener corpus")
        let heldOut = try TokenWindows(tokens: task.corpus(sequences: meanWindows, seed: training.seed + 1),
                                       length: model.context, vocab: model.vocab, name: "opener held-out")

        let trainer = try Trainer(model: GPT(config: model, seed: training.seed, threads: threads), config: training)
        let trainStart = Date(), trainCPUStart = processCPUSeconds()
        for step in 0..<training.steps {
            let batch = stream.batch(step: step, seed: training.seed, size: training.batch)
            let report = try trainer.step(inputs: batch.inputs, targets: batch.targets, batch: training.batch, length: model.context)
            if step % 100 == 0 { progress?("train step \(step): loss \(report.loss)") }
        }
        let trainSeconds = Date().timeIntervalSince(trainStart), trainCPU = processCPUSeconds() - trainCPUStart
        let windows = heldOut.evenlySpacedWindows(count: meanWindows)
        let heldOutLoss = try trainer.heldOutLoss(windows: windows, count: meanWindows, length: model.context)

        let checkpointPath = FileManager.default.temporaryDirectory.appendingPathComponent("bench-prune-\(UUID()).safetensors").path
        try Checkpoint(trainer: trainer).save(to: checkpointPath)
        defer { try? FileManager.default.removeItem(atPath: checkpointPath) }
        let session = try PruneSession(modelPath: checkpointPath, workers: threads)
        let meansStart = Date()
        try session.computeMeans(heldOut: heldOut.tokens, windows: meanWindows)
        let meansSeconds = Date().timeIntervalSince(meansStart)

        let data = TaskData(task: "opener", train: try task.pairs(count: trainPairs, seed: training.seed + 2),
                            test: try task.pairs(count: testPairs, seed: training.seed + 3))
        let lock = NSLock()
        let frontierCPUStart = processCPUSeconds()
        let result = try session.frontier(data, settings: frontier) { lambda, step in
            guard step.step % 100 == 0 else { return }
            lock.lock()
            progress?("prune λ \(lambda) step \(step.step): task loss \(step.taskLoss), kept \(step.keptNodes)")
            lock.unlock()
        }
        let frontierCPU = processCPUSeconds() - frontierCPUStart
        return Result(dModel: model.dModel, density: training.density, trainSteps: training.steps, trainBatch: training.batch,
                      trainSeconds: trainSeconds, heldOutLoss: heldOutLoss, meansSeconds: meansSeconds,
                      frontierSeconds: result.seconds, frontierOverTrain: result.seconds / trainSeconds,
                      trainCPUSeconds: trainCPU, frontierCPUSeconds: frontierCPU, frontierCPUOverTrainCPU: frontierCPU / trainCPU,
                      lambdas: frontier.lambdas.count, maskSteps: frontier.pruning.steps, batchPairs: frontier.pruning.batchPairs,
                      meanPromptLength: Double(data.train.lengths.reduce(0) { $0 + Int($1) }) / Double(data.train.count),
                      fullTaskLoss: result.fullLoss,
                      edgesAtTarget: Dictionary(uniqueKeysWithValues: result.points.map { ("\($0.target)", $0.circuit?.edgeCount) }),
                      threads: threads)
    }
}

/// CPU seconds of the whole process so far (all threads).
func processCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}
