import ArgumentParser
import Circuits
import Foundation
import PythonCode
import SparseGPT

struct TasksEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Task loss of a trained model (full model, no pruning) on each task's test pairs, and its held-out loss.",
        discussion: "Task loss as in SPEC 1: softmax over the two candidate logits at the last prompt position, cross-entropy of the correct one, averaged over prompts.")

    @Option(help: "Trained model checkpoint (.safetensors).") var model: String
    @Option(help: "Tokenizer JSON file the model was trained with.") var tokenizer: String
    @Option(help: "Task names, comma-separated (default: all).") var tasks: String?
    @Option(help: "Task seed.") var seed: UInt64 = 0
    @Option(help: "Test pairs per task.") var testPairs = 512
    @Option(help: "Held-out tokens (flat uint16) for the held-out loss.") var val: String?
    @Option(help: "Held-out windows evaluated.") var valWindows = 256
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let tok = try BPETokenizer.load(from: tokenizer)
        let session = try PruneSession(modelPath: model)
        let config = session.config
        guard tok.vocabularySize <= config.vocab else {
            throw ValidationError("\(tokenizer) has \(tok.vocabularySize) tokens but \(model) a vocabulary of \(config.vocab)")
        }
        var fields: [String] = []
        if let val {
            let windows = try TokenWindows(tokens: readTokenFile(val), length: config.context, vocab: config.vocab, name: val)
            let count = max(1, min(valWindows, windows.tokens.count / (config.context + 1)))
            let loss = try heldOutLoss(model: session.model.model, windows: windows.evenlySpacedWindows(count: count),
                                       count: count, length: config.context)
            fields.append("\"heldout_loss\": \(String(format: "%.4f", loss))")
            if !json { print(String(format: "held-out loss %.4f", loss)) }
        }
        let selected = try tasks.map { try $0.split(separator: ",").map { try PythonTask.named(String($0)) } } ?? PythonTask.all
        let nodes = session.layout.count
        let ones = [Float](repeating: 1, count: nodes), zeros = [Float](repeating: 0, count: nodes)
        for task in selected {
            let test = try task.makePairs(tokenizer: tok, seed: seed, trainPairs: 0, testPairs: testPairs,
                                          maxLength: config.context).test
            let pairs = try Circuits.TaskPairs(width: test.width, prompts: test.prompts, lengths: test.lengths,
                                               candidates: test.candidates)
            let loss = try session.model.taskLoss(pairs, masks: ones, means: zeros, maskGradient: false).loss
            fields.append("\"\(task.name)\": \(String(format: "%.4f", loss))")
            if !json { print("\(task.name.padding(toLength: 28, withPad: " ", startingAt: 0)) \(String(format: "%.4f", loss))") }
        }
        if json { print("{" + fields.joined(separator: ", ") + "}") }
    }
}
