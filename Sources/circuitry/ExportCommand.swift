import ArgumentParser
import Foundation
import Sweep

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a run's models, tokenizer, pairs, circuits and tables under readable names, for Python and other tools.",
        discussion: """
        Writes models/MODEL_ID.safetensors (weights; --with-optimizer keeps Adam's moments), tokenizer.json \
        (Hugging Face tokenizers), circuitry-tokenizer.json, pairs.json, held_out_tokens.bin, \
        circuits/MODEL_ID__TASK.json, frontiers/MODEL_ID__TASK.json, frontier.csv, frontier.json, models.csv \
        and manifest.json. MODEL_ID is the tables' model_id column. A running sweep exports what is finished.
        """)

    @OptionGroup var runDirectory: RunDirectoryArgument

    @Option(help: "Directory to write the export into (created when missing).")
    var out: String

    @Flag(help: "Keep the Adam moments in the model files (three times the size; needed only to continue training).")
    var withOptimizer = false

    func run() throws {
        var export = RunExport(runDirectory: runDirectory.url)
        export.withOptimizer = withOptimizer
        let manifest = try export.write(to: URL(fileURLWithPath: out))
        print("exported \(manifest.models.count) models and \(manifest.models.map(\.circuits.count).reduce(0, +)) circuits of sweep \(manifest.sweep) to \(out)")
    }
}
