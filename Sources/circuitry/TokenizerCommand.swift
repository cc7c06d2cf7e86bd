import ArgumentParser
import Foundation
import PythonCode

struct Tokenizer: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The byte-level BPE tokenizer.",
        subcommands: [TokenizerTrain.self, TokenizerEncode.self, TokenizerExport.self]
    )
}

struct TokenizerTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train a BPE tokenizer on a corpus and save it as JSON.")

    @Option(help: "\"synthetic\" or a directory of .py files.") var corpus = "synthetic"
    @Option(help: "Corpus seed.") var seed: UInt64 = 0
    @Option(help: "Vocabulary size (256 byte tokens plus merges).") var vocab = 512
    @Option(help: "Bytes of corpus text to train on.") var bytes = BPETokenizer.defaultTrainingBytes
    @Option(help: "Output JSON file.") var out: String

    func run() throws {
        let source = CorpusSource(argument: corpus, seed: seed)
        let text = try source.trainingText(bytes: bytes)
        let start = Date()
        let (tok, reserved) = try BPETokenizer.trainServingTasks(on: text, vocabularySize: vocab)
        let seconds = Date().timeIntervalSince(start)
        try tok.save(to: out)
        print("trained on \(text.count) bytes of \(source) in \(String(format: "%.2f", seconds)) s: vocabulary \(tok.vocabularySize) -> \(out)")
        print(reserved.isEmpty ? "plain BPE makes every task candidate one token"
              : "task candidates reserved as whole tokens (plain BPE split \(reserved.count): \(reserved.map(\.debugDescription).joined(separator: ", ")))")
    }
}

struct TokenizerEncode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode", abstract: "Show the tokens of a text (the argument, or standard input).")

    @Option(help: "Tokenizer JSON file.") var tokenizer: String
    @Argument(help: "Text to encode; standard input when omitted.") var text: String?

    func run() throws {
        let tok = try BPETokenizer.load(from: tokenizer)
        let input = text ?? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        let ids = tok.encode(input)
        print(ids.map { "\($0):\(tok.display($0))" }.joined(separator: " | "))
        print("\(input.utf8.count) bytes, \(ids.count) tokens")
    }
}

struct TokenizerExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a tokenizer as a Hugging Face tokenizer.json, which Python's `tokenizers` loads and encodes with to the same ids.")

    @Option(help: "Tokenizer JSON file.") var tokenizer: String
    @Option(help: "Output tokenizer.json file.") var out: String

    func run() throws {
        try BPETokenizer.load(from: tokenizer).huggingFace().save(to: URL(fileURLWithPath: out))
        print("wrote \(out)")
    }
}
