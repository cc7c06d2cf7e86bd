import Circuits
import Foundation

// Each section of a sweep file reads itself from its YAML mapping: the keys it knows over its
// defaults, each checked with the file, line and key of a problem; an unknown key is an error.

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
