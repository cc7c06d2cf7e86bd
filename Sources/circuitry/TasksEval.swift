import ArgumentParser
import Circuits
import Foundation
import PythonCode
import SparseGPT
import Sweep

struct TasksEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Task loss of a trained model (full model, no pruning) on each task's test pairs, and its held-out loss.",
        discussion: """
        Task loss: softmax over the two candidate logits at the last prompt position, cross-entropy of the \
        correct one, averaged over prompts. Beside it, the same loss over the A prompts and over the B prompts \
        of the pairs alone, and the accuracy (the share of prompts whose correct candidate has the larger logit): \
        a model that has learnt which continuation is common but not the context that decides it scores well \
        on one side and far above chance (0.693) on the other. The test pairs are a pairs file's (--pairs, e.g. a sweep's or an \
        export's pairs.json) or generated with --tokenizer; a tokenizer other than the one the checkpoint was \
        trained on is refused.
        """)

    @Option(help: "Trained model checkpoint (.safetensors).") var model: String
    @Option(help: "Tokenizer JSON file the model was trained with (makes the test pairs unless --pairs is given).")
    var tokenizer: String?
    @Option(help: "Pairs file, as `circuitry tasks export` or a sweep writes it: its test pairs are evaluated.")
    var pairs: String?
    @Option(help: "Task to evaluate (repeatable; default: every task).") var task: [String] = []
    @Option(help: "Task seed, for generated pairs.") var seed: UInt64 = 0
    @Option(help: "Test pairs per task, for generated pairs.") var testPairs = 512
    @Option(help: "Held-out tokens (flat uint16) for the held-out loss.") var heldOutTokens: String?
    @Option(help: "Held-out windows evaluated.") var heldOutWindows = 256
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard tokenizer != nil || pairs != nil else { throw ValidationError("give --pairs FILE or --tokenizer FILE") }
    }

    private struct Result: Encodable {
        var held_out_loss: Double?
        var task_loss: [String: Double] = [:]
        var task_loss_a: [String: Double] = [:]
        var task_loss_b: [String: Double] = [:]
        var accuracy: [String: Double] = [:]
    }

    func run() throws {
        let session = try PruneSession(modelPath: model)
        let config = session.config
        if let pairs { try TokenizerIdentity.check(pairsFile: pairs, against: session.checkpoint, file: model) }
        var tok: BPETokenizer?
        if let tokenizer {
            let loaded = try BPETokenizer.load(from: tokenizer)
            try TokenizerIdentity.check(loaded, file: tokenizer, against: session.checkpoint, file: model)
            guard loaded.vocabularySize <= config.vocab else {
                throw ValidationError("\(tokenizer) has \(loaded.vocabularySize) tokens but \(model) a vocabulary of \(config.vocab)")
            }
            tok = loaded
        }
        var result = Result()
        if let heldOutTokens {
            let windows = try TokenWindows(tokens: readTokenFile(heldOutTokens), length: config.context, vocab: config.vocab,
                                           name: heldOutTokens)
            let count = max(1, min(heldOutWindows, windows.tokens.count / (config.context + 1)))
            let loss = try heldOutLoss(model: session.model.model, windows: windows.evenlySpacedWindows(count: count),
                                       count: count, length: config.context)
            result.held_out_loss = loss
            if !json { print(String(format: "held-out loss %.4f", loss)) }
        }
        let nodes = session.layout.count
        let ones = [Float](repeating: 1, count: nodes), zeros = [Float](repeating: 0, count: nodes)
        if !json { print("task".padding(toLength: 28, withPad: " ", startingAt: 0) + " loss    A       B       accuracy") }
        for (name, test) in try testSets(tokenizer: tok, context: config.context) {
            let sides = PromptSides(margins: try session.model.logitMargins(test, masks: ones, means: zeros))
            result.task_loss[name] = sides.loss
            result.task_loss_a[name] = sides.lossA
            result.task_loss_b[name] = sides.lossB
            result.accuracy[name] = sides.accuracy
            if !json {
                print("\(name.padding(toLength: 28, withPad: " ", startingAt: 0)) "
                      + String(format: "%.4f  %.4f  %.4f  %.3f", sides.loss, sides.lossA, sides.lossB, sides.accuracy))
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        }
    }

    /// The test pairs of each chosen task, from the pairs file or generated with the tokenizer.
    private func testSets(tokenizer: BPETokenizer?, context: Int) throws -> [(String, Circuits.TaskPairs)] {
        if let pairs {
            let all = try TaskPairsFile.load(URL(fileURLWithPath: pairs))
            if let missing = task.first(where: { name in !all.contains { $0.task == name } }) {
                throw ValidationError("\(pairs) has no task \(missing) (it has \(all.map(\.task).joined(separator: ", ")))")
            }
            return all.filter { task.isEmpty || task.contains($0.task) }.map { ($0.task, $0.test) }
        }
        let selected = task.isEmpty ? PythonTask.all : try task.map(PythonTask.named)
        return try selected.map { pythonTask in
            let test = try pythonTask.makePairs(tokenizer: tokenizer!, seed: seed, trainPairs: 0, testPairs: testPairs,
                                                maxLength: context).test
            return (pythonTask.name, try Circuits.TaskPairs(width: test.width, prompts: test.prompts, lengths: test.lengths,
                                                            candidates: test.candidates))
        }
    }
}
