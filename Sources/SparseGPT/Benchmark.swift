import Foundation

/// The training benchmark, the same measurement as the reference's `bench`: train `steps` steps on
/// seeded random tokens with the schedule over those steps, time all but the first `warmup` steps.
public struct TrainingBenchmark {
    public var model: ModelConfig
    public var training: TrainingConfig
    public var threads: Int
    public var warmup: Int
    /// false runs every product as dense sgemm (to measure what skipping zeros gains).
    public var sparseKernels: Bool
    /// Whether to time the phases of the timed steps (`Result.phaseMilliseconds`).
    public var profile = false

    public init(model: ModelConfig, training: TrainingConfig, threads: Int = 2, warmup: Int = 5, sparseKernels: Bool = true) {
        self.model = model; self.training = training; self.threads = threads; self.warmup = warmup
        self.sparseKernels = sparseKernels
    }

    public struct Result {
        public var tokensPerSecond: Double
        public var msPerStep: Double
        public var parameters: Int
        public var nonzeroParameters: Int
        public var finalLoss: Float
        /// Per phase (`TrainingPhase` order, then everything else), milliseconds per timed step, wall and
        /// process CPU time; empty without `profile`.
        public var phaseMilliseconds: [Double] = []
        public var phaseCPUMilliseconds: [Double] = []
    }

    /// Names of `Result.phaseMilliseconds`' entries.
    public static let phaseNames = TrainingPhase.allCases.map(\.label) + ["everything else (norms, GELU, loss, embeddings)"]

    public func run() throws -> Result {
        try model.validate()
        guard training.steps > warmup else {
            throw SparseGPTError.invalidConfig("steps \(training.steps) must exceed the \(warmup) warm-up steps")
        }
        let gpt = try GPT(config: model, seed: training.seed, threads: threads)
        gpt.useSparseKernels = sparseKernels
        let trainer = try Trainer(model: gpt, config: training)
        let window = model.context + 1
        let tokens = randomTokens(count: training.steps * training.batch * window, vocab: model.vocab, seed: training.seed)
        var start: UInt64 = 0, startCPU: UInt64 = 0
        var loss: Float = 0
        let phases = PhaseTimes()
        for t in 0..<training.steps {
            if t == warmup {
                start = DispatchTime.now().uptimeNanoseconds
                startCPU = PhaseTimes.processCPUNanoseconds()
                if profile { gpt.phaseTimes = phases }
            }
            var x = [Int32](), y = [Int32]()
            for b in 0..<training.batch {
                let base = (t * training.batch + b) * window
                x += tokens[base..<(base + model.context)]
                y += tokens[(base + 1)..<(base + window)]
            }
            loss = try trainer.step(inputs: x, targets: y, batch: training.batch, length: model.context).loss
        }
        let elapsed = DispatchTime.now().uptimeNanoseconds - start
        let timedSteps = Double(training.steps - warmup)
        let seconds = Double(elapsed) * 1e-9 / timedSteps
        let elapsedCPU = PhaseTimes.processCPUNanoseconds() - startCPU
        var phaseMilliseconds: [Double] = [], phaseCPUMilliseconds: [Double] = []
        if profile {
            func perStep(_ phases: [UInt64], total: UInt64) -> [Double] {
                phases.map { Double($0) * 1e-6 / timedSteps } + [Double(total &- phases.reduce(0, +)) * 1e-6 / timedSteps]
            }
            phaseMilliseconds = perStep(phases.nanoseconds, total: elapsed)
            phaseCPUMilliseconds = perStep(phases.cpuNanoseconds, total: elapsedCPU)
        }
        let w = gpt.parameters.pointer
        var nonzero = 0
        for i in 0..<gpt.parameters.count where w[i] != 0 { nonzero += 1 }
        return Result(tokensPerSecond: Double(training.batch * model.context) / seconds, msPerStep: seconds * 1e3,
                      parameters: gpt.parameters.count, nonzeroParameters: nonzero, finalLoss: loss, phaseMilliseconds: phaseMilliseconds,
                      phaseCPUMilliseconds: phaseCPUMilliseconds)
    }

    /// One JSON line with the reference bench's fields (config, threads, tokens_per_second, ms_per_step,
    /// params, nonzero_params, final_loss) plus `engine` and `blas_kernel`.
    public func jsonLine(_ r: Result) throws -> String {
        let config = try flatConfigJSON(model: model, training: training)
        var object = try JSONSerialization.jsonObject(with: Data(config.utf8)) as! [String: Any]
        object["threads"] = threads
        object["engine"] = "swift"
        object["blas_kernel"] = BLASKernel.current
        object["sparse_kernels"] = sparseKernels
        object["tokens_per_second"] = (r.tokensPerSecond * 10).rounded() / 10
        object["ms_per_step"] = (r.msPerStep * 1000).rounded() / 1000
        object["params"] = r.parameters
        object["nonzero_params"] = r.nonzeroParameters
        object["final_loss"] = (Double(r.finalLoss) * 1e4).rounded() / 1e4
        if !r.phaseMilliseconds.isEmpty {
            var phases: [String: [Double]] = [:]
            for (i, name) in TrainingBenchmark.phaseNames.enumerated() {
                phases[name] = [r.phaseMilliseconds[i], r.phaseCPUMilliseconds[i]].map { ($0 * 1000).rounded() / 1000 }
            }
            object["phase_ms_per_step_wall_cpu"] = phases
        }
        return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }
}
