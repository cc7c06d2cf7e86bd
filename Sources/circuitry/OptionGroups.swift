import ArgumentParser
import SparseGPT

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
