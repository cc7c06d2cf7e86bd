import Circuits
import Foundation

// Each section of a sweep file reads itself from its YAML mapping: the keys it knows over its
// defaults, each checked with the file, line and key of a problem; an unknown key is an error.

extension GridSection {
    init(yaml grid: YAMLSection) throws {
        self.init(
            density: try grid.doubles("density", above: 0, atMost: 1, required: true)!,
            dModel: try grid.ints("d_model", min: 16, required: true)!,
            afrac: try grid.doubles("afrac", above: 0, atMost: 1) ?? [0.25],
            seed: try grid.ints("seed", min: 0) ?? [0],
            task: try grid.strings("task", required: true)!)
        if let denseAfrac = try grid.doubles("dense_afrac", above: 0, atMost: 1) {
            guard self.density.contains(where: { $0 >= 1 }) else {
                throw grid.error("dense_afrac", "the grid has no dense model (density 1) for it to apply to")
            }
            guard denseAfrac.contains(1) else {
                throw grid.error("dense_afrac", "must list 1.0: the dense baseline has no AbsTopK; other values add dense models with AbsTopK beside it")
            }
            self.denseAfrac = denseAfrac
        }
        if let entries = try grid.sections("exclude") {
            exclude = try entries.map { entry in
                let exclusion = GridExclusion(density: try entry.double("density"), dModel: try entry.int("d_model", min: 1),
                                              afrac: try entry.double("afrac"), seed: try entry.int("seed", min: 0))
                try entry.rejectUnknownKeys()
                guard exclusion != GridExclusion() else {
                    throw SweepFileError(file: entry.file, line: entry.line, key: entry.path,
                                         message: "give at least one of density, d_model, afrac, seed")
                }
                return exclusion
            }
        }
        for (index, task) in task.enumerated() where !knownTasks.contains(task) {
            throw grid.error("task", "unknown task '\(task)' (known: \(knownTasks.joined(separator: ", ")))",
                             line: grid.itemLine("task", index))
        }
        try grid.rejectUnknownKeys()
    }
}

extension DataSection {
    init(yaml: YAMLSection) throws {
        self.init()
        corpus = try yaml.string("corpus") ?? corpus
        corpusSeed = try yaml.int("corpus_seed", min: 0) ?? corpusSeed
        trainSequences = try yaml.int("train_sequences", min: 1) ?? trainSequences
        heldOutSequences = try yaml.int("held_out_sequences", min: 1) ?? heldOutSequences
        vocabSize = try yaml.int("vocab_size", min: 257) ?? vocabSize
        trainPairs = try yaml.int("train_pairs", min: 1) ?? trainPairs
        testPairs = try yaml.int("test_pairs", min: 1) ?? testPairs
        try yaml.rejectUnknownKeys()
    }
}

extension ModelSection {
    init(yaml: YAMLSection) throws {
        self.init()
        nLayer = try yaml.int("n_layer", min: 1) ?? nLayer
        context = try yaml.int("context", min: 2) ?? context
        dHead = try yaml.int("d_head", min: 1) ?? dHead
        embedDensity = try yaml.double("embed_density", above: 0, atMost: 1)
        try yaml.rejectUnknownKeys()
    }
}

extension TrainSection {
    init(yaml: YAMLSection) throws {
        self.init()
        steps = try yaml.int("steps", min: 1) ?? steps
        batchSize = try yaml.int("batch_size", min: 1) ?? batchSize
        learningRate = try yaml.double("learning_rate", above: 0) ?? learningRate
        if let byWidth = try yaml.section("learning_rate_by_width") {
            for key in byWidth.keys {
                guard let width = Int(key) else {
                    throw byWidth.error(key, "expected a d_model (integer) as key")
                }
                learningRateByWidth[width] = try byWidth.double(key, above: 0)
            }
        }
        checkpointEvery = try yaml.double("checkpoint_every", above: 0, atMost: 1) ?? checkpointEvery
        try yaml.rejectUnknownKeys()
    }
}

extension PruneSection {
    init(yaml: YAMLSection) throws {
        self.init()
        steps = try yaml.int("steps", min: 1) ?? steps
        learningRate = try yaml.double("learning_rate", above: 0) ?? learningRate
        batchSize = try yaml.int("batch_size", min: 1) ?? batchSize
        lambdas = try yaml.doubles("lambdas", above: 0) ?? lambdas
        targetLosses = try yaml.doubles("target_losses", above: 0) ?? targetLosses
        headlineTarget = try yaml.double("headline_target", above: 0) ?? headlineTarget
        if let start = try yaml.string("bisection") {
            guard let value = BisectionStart(rawValue: start) else {
                let choices = BisectionStart.allCases.map(\.rawValue).joined(separator: " or ")
                throw yaml.error("bisection", "expected \(choices), got \"\(start)\"")
            }
            bisection = value
        }
        calibration = try yaml.bool("calibration")
        tauInitializations = try yaml.int("tau_initializations", min: 1)
        tauNoise = try yaml.double("tau_noise", atLeast: 0)
        lambdaExtensions = try yaml.int("lambda_extensions", min: 0)
        try yaml.rejectUnknownKeys()
    }
}

extension RetrySection {
    init(yaml: YAMLSection) throws {
        self.init()
        maxAttempts = try yaml.int("max_attempts", min: 1) ?? maxAttempts
        backoffSeconds = try yaml.double("backoff_seconds", atLeast: 0) ?? backoffSeconds
        backoffMaxSeconds = try yaml.double("backoff_max_seconds", atLeast: 0) ?? backoffMaxSeconds
        try yaml.rejectUnknownKeys()
    }
}

extension TimeoutSection {
    init(yaml: YAMLSection) throws {
        self.init()
        heartbeatSeconds = try yaml.double("heartbeat_seconds", above: 0) ?? heartbeatSeconds
        workerDeadSeconds = try yaml.double("worker_dead_seconds", above: 0) ?? workerDeadSeconds
        shardSeconds = try yaml.double("shard_seconds", atLeast: 0) ?? shardSeconds
        if workerDeadSeconds <= heartbeatSeconds {
            throw yaml.error("worker_dead_seconds", "must be longer than heartbeat_seconds")
        }
        try yaml.rejectUnknownKeys()
    }
}

extension SimulateSection {
    init(yaml: YAMLSection) throws {
        self.init()
        steps = try yaml.int("steps", min: 1) ?? steps
        stepSeconds = try yaml.double("step_seconds", atLeast: 0) ?? stepSeconds
        crashFirstAttempt = try yaml.strings("crash_first_attempt") ?? []
        alwaysFail = try yaml.strings("always_fail") ?? []
        failPermanently = try yaml.strings("fail_permanently") ?? []
        unpreparableTasks = try yaml.strings("unpreparable_tasks") ?? []
        try yaml.rejectUnknownKeys()
    }
}
