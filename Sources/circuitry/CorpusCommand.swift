import ArgumentParser
import Foundation
import PythonCode

struct Corpus: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The pretraining corpus: synthetic Python programs or a directory of .py files.",
        subcommands: [CorpusSample.self, CorpusStats.self, CorpusTokens.self]
    )
}

struct CorpusSample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample", abstract: "Print generated synthetic Python programs.")

    @Option(help: "Number of programs.") var count = 3
    @Option(help: "Generator seed.") var seed: UInt64 = 0
    @Flag(help: "Print from the held-out stream instead of the training stream.") var heldOut = false

    func run() throws {
        var generator = SyntheticPython(seed: seed, stream: heldOut ? 1 : 0)
        for k in 0..<count {
            if k > 0 { print("# ----") }
            print(generator.program(), terminator: "")
        }
    }
}

struct CorpusStats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Count the files of a directory corpus and its train/held-out split.")

    @Argument(help: "Directory searched recursively for .py files.") var path: String
    @Option(help: "Shuffle seed.") var seed: UInt64 = 0

    func run() throws {
        let corpus = try DirectoryCorpus(root: path, seed: seed)
        let bytes = { (files: [DirectoryCorpus.File]) in files.reduce(0) { $0 + $1.text.utf8.count } }
        print("train: \(corpus.train.count) files, \(bytes(corpus.train)) bytes")
        print("held-out: \(corpus.heldOut.count) files, \(bytes(corpus.heldOut)) bytes")
        print("skipped: \(corpus.nonUTF8Count) not UTF-8" + (corpus.nonUTF8Paths.isEmpty ? "" : ": " + corpus.nonUTF8Paths.joined(separator: ", ")))
    }
}

struct CorpusTokens: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens",
        abstract: "Write train and held-out token streams as flat little-endian uint16 files.")

    @Option(help: "\"synthetic\" or a directory of .py files.") var corpus = "synthetic"
    @Option(help: "Corpus seed.") var seed: UInt64 = 0
    @Option(help: "Tokenizer JSON file.") var tokenizer: String
    @Option(help: "Number of train tokens.") var trainTokenCount = 2_000_000
    @Option(help: "Number of held-out tokens.") var heldOutTokenCount = 100_000
    @Option(help: "Output file for train tokens.") var outTrain: String
    @Option(help: "Output file for held-out tokens.") var outHeldOut: String

    func run() throws {
        let tok = try BPETokenizer.load(from: tokenizer)
        let source = CorpusSource(argument: corpus, seed: seed)
        let tokens = try source.tokens(tokenizer: tok, trainTokens: trainTokenCount, heldOutTokens: heldOutTokenCount)
        try writeTokenFile(tokens.train, to: outTrain)
        try writeTokenFile(tokens.heldOut, to: outHeldOut)
        print("\(source): \(tokens.train.count) train tokens -> \(outTrain), \(tokens.heldOut.count) held-out tokens -> \(outHeldOut)")
    }
}
