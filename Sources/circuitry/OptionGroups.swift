import ArgumentParser
import Foundation
import Logging
import SparseGPT
import Sweep

/// A model's shape and sparsity, spelled the same by every command that makes a model. Each flag
/// given replaces that setting of the command's own starting point (a run file, a benchmark's
/// configuration).
struct ModelShapeOptions: ParsableArguments {
    @Option(help: "Vocabulary size.") var vocab: Int?
    @Option(help: "Sequence length.") var context: Int?
    @Option(help: "Model width.") var dModel: Int?
    @Option(help: "Transformer blocks.") var nLayer: Int?
    @Option(help: "AbsTopK fraction (1 = off).") var afrac: Double?
    @Option(help: "Block-matrix density (1 = dense).") var density: Double?
    @Option(help: "Embedding density (default min(1, 4 density)).") var embedDensity: Double?

    /// The flags given, by name, for commands that take none of them in some mode.
    var given: [String] {
        [("--vocab", vocab != nil), ("--context", context != nil), ("--d-model", dModel != nil), ("--n-layer", nLayer != nil),
         ("--afrac", afrac != nil), ("--density", density != nil), ("--embed-density", embedDensity != nil)]
            .filter(\.1).map(\.0)
    }

    func apply(to model: inout ModelConfig, _ training: inout TrainingConfig) {
        if let vocab { model.vocab = vocab }
        if let context { model.context = context }
        if let dModel { model.dModel = dModel }
        if let nLayer { model.nLayer = nLayer }
        if let afrac { model.afrac = afrac }
        if let density { training.density = density }
        if let embedDensity { training.embedDensity = embedDensity }
    }
}

/// The run directory a command reads or continues, the first argument of every such command.
struct RunDirectoryArgument: ParsableArguments {
    @Argument(help: ArgumentHelp("The run directory of the sweep.", valueName: "run-dir"))
    var path: String

    var url: URL { URL(fileURLWithPath: path) }
}

/// How a new sweep is laid out on this machine: where its run directory goes and which keys of
/// its sweep file the command line replaces. `run` and `coordinator` take the same flags.
struct NewSweepOptions: ParsableArguments {
    @Option(name: .customLong("run-dir"), help: ArgumentHelp("Run directory (default: runs/NAME).", valueName: "run-dir"))
    var runDirectory: String?

    @OptionGroup var overrides: SweepOverrideOptions

    /// Loads the sweep file with the overrides and creates its run directory.
    func createRun(sweepFile: String) throws -> URL {
        let spec = try overrides.load(sweepFile: sweepFile)
        let url = runDirectory.map { URL(fileURLWithPath: $0) } ?? RunDirectory.defaultURL(forSweep: spec.name)
        try RunDirectory(url).create(spec: spec)
        return url
    }
}

/// Keys of a sweep file that the command line replaces.
struct SweepOverrideOptions: ParsableArguments {
    @Option(name: .customLong("set"), help: ArgumentHelp(
        "Override one key of the sweep file, e.g. --set data.corpus=/usr/lib/python3.11 (repeatable).",
        valueName: "key=value"))
    var overrides: [String] = []

    var isEmpty: Bool { overrides.isEmpty }

    func load(sweepFile: String) throws -> SweepSpec {
        try SweepSpec.load(from: URL(fileURLWithPath: sweepFile), overrides: overrides.map(SweepOverride.init))
    }
}

/// Shards run at once by the local worker of `run` and `resume`.
struct LocalSlotsOption: ParsableArguments {
    @Option(help: "Shards run at once on this machine (default: one per core).")
    var slots: Int?

    func validate() throws {
        if let slots, slots < 1 { throw ValidationError("--slots must be at least 1, got \(slots)") }
    }

    var count: Int { slots ?? ProcessInfo.processInfo.activeProcessorCount }
}

/// The coordinator's CURVE keys: its own key pair and the worker keys it accepts.
struct CoordinatorKeyOptions: ParsableArguments {
    @Option(help: "The coordinator's CURVE key pair file (from `circuitry keygen`).")
    var key: String?

    @Option(help: "Worker public keys to accept, one per line (re-read when it changes).")
    var authorizedKeys: String?

    func validate() throws {
        guard (key == nil) == (authorizedKeys == nil) else { throw ValidationError("--key and --authorized-keys go together") }
    }

    func security(logger: Logger) throws -> CoordinatorSecurity? {
        guard let key, let authorizedKeys else { return nil }
        let keyURL = URL(fileURLWithPath: key)
        if let warning = CurveKeyFile.permissionWarning(keyURL) { logger.warning("\(warning)") }
        return try CoordinatorSecurity(keyFile: keyURL, authorizedKeysFile: URL(fileURLWithPath: authorizedKeys))
    }
}

/// A worker's CURVE keys: its own key pair and the coordinator's public key.
struct WorkerKeyOptions: ParsableArguments {
    @Option(help: "This worker's CURVE key pair file (from `circuitry keygen`).")
    var key: String?

    @Option(help: "The coordinator's public key: its .pub file or the 40-character Z85 key.")
    var serverKey: String?

    func validate() throws {
        guard (key == nil) == (serverKey == nil) else { throw ValidationError("--key and --server-key go together") }
    }

    func security(logger: Logger) throws -> WorkerSecurity? {
        guard let key, let serverKey else { return nil }
        let keyURL = URL(fileURLWithPath: key)
        if let warning = CurveKeyFile.permissionWarning(keyURL) { logger.warning("\(warning)") }
        return try WorkerSecurity(keyFile: keyURL, serverKey: serverKey)
    }
}
