import ArgumentParser
import Circuits
import Foundation
import PythonCode

struct Tasks: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The minimal-pair tasks circuits are pruned for.",
        subcommands: [TasksList.self, TasksShow.self, TasksExport.self, TasksEval.self]
    )
}

/// A tokenizer from a file, or one trained on 2 MB of the default synthetic corpus.
struct TokenizerOption: ParsableArguments {
    @Option(help: "Tokenizer JSON file (default: the one `circuitry tokenizer train` makes with its defaults).")
    var tokenizer: String?

    func load() throws -> BPETokenizer {
        if let path = tokenizer { return try BPETokenizer.load(from: path) }
        return try BPETokenizer.trainServingTasks(on: CorpusSource.synthetic(seed: 0).trainingText(bytes: BPETokenizer.defaultTrainingBytes)).tokenizer
    }
}

struct TasksList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the tasks.")

    func run() {
        for task in PythonTask.all {
            let cands = task.fixedCandidates.map { "\($0.target.debugDescription) / \($0.alt.debugDescription)" }
                ?? "per pair (the swapped names)"
            print("\(task.name.padding(toLength: 28, withPad: " ", startingAt: 0)) \(task.summary); candidates \(cands)")
        }
    }
}

struct TasksShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show a few pairs of a task with their tokens and candidate tokens.")

    @Argument(help: "Task name (see `tasks list`).") var name: String
    @OptionGroup var tokenizerOption: TokenizerOption
    @Option(help: "Pairs to show.") var count = 3
    @Option(help: "Task seed.") var seed: UInt64 = 0
    @Option(help: "Maximum prompt length in tokens.") var maxLength = 64

    func run() throws {
        let task = try PythonTask.named(name)
        let tok = try tokenizerOption.load()
        let splits = try task.makePairs(tokenizer: tok, seed: seed, trainPairs: count, testPairs: 0, maxLength: maxLength)
        let pairs = splits.train
        for i in 0..<pairs.pairCount {
            print("pair \(i)")
            for (label, p) in [("A", 2 * i), ("B", 2 * i + 1)] {
                let text = label == "A" ? pairs.pairs[i].promptA : pairs.pairs[i].promptB
                let ids = pairs.prompt(p).map { Int($0) }
                let correct = Int(pairs.candidates[2 * p]), wrong = Int(pairs.candidates[2 * p + 1])
                print("  \(label): \(text.debugDescription)")
                print("     \(ids.count) tokens: \(ids.map { tok.display($0) }.joined(separator: "|"))")
                print("     correct \(correct) \"\(tok.display(correct))\", wrong \(wrong) \"\(tok.display(wrong))\"")
            }
        }
    }
}

struct TasksExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write the train and test pairs of tasks, tokenized, as JSON.")

    @Option(help: "Task to export (repeatable; default: every task).") var task: [String] = []
    @OptionGroup var tokenizerOption: TokenizerOption
    @Option(help: "Task seed.") var seed: UInt64 = 0
    @Option(help: "Train pairs per task.") var trainPairs = 2048
    @Option(help: "Test pairs per task.") var testPairs = 512
    @Option(help: "Maximum prompt length in tokens (the model context).") var maxLength = 64
    @Option(help: "Output JSON file.") var out: String

    func run() throws {
        let tok = try tokenizerOption.load()
        let selected = task.isEmpty ? PythonTask.all : try task.map(PythonTask.named)
        let convert = { (p: PythonCode.TaskPairs) in
            try Circuits.TaskPairs(width: p.width, prompts: p.prompts, lengths: p.lengths, candidates: p.candidates)
        }
        let data = try selected.map { pythonTask in
            let splits = try pythonTask.makePairs(tokenizer: tok, seed: seed, trainPairs: trainPairs,
                                                  testPairs: testPairs, maxLength: maxLength)
            return TaskData(task: pythonTask.name, train: try convert(splits.train), test: try convert(splits.test))
        }
        try TaskPairsFile.save(data, tokenizerHash: tok.sha256, to: URL(fileURLWithPath: out))
        print("wrote \(selected.count) tasks (\(trainPairs) train, \(testPairs) test pairs each, width \(maxLength)) to \(out)")
    }
}
