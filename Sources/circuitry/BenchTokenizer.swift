import ArgumentParser
import Foundation
import PythonCode

struct BenchTokenizer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "BPE training time and encode/decode throughput on synthetic and real Python.")

    @Option(help: "Bytes of text per corpus.") var bytes = 10_000_000
    @Option(help: "Vocabulary size.") var vocab = 512
    @Option(help: "A directory of real Python to measure too (skipped when absent).")
    var directory = "/usr/lib/python3.11"
    @Flag(help: "Print one JSON line.") var json = false

    func run() throws {
        var corpora: [(String, CorpusSource)] = [("synthetic", .synthetic(seed: 0))]
        if FileManager.default.fileExists(atPath: directory) {
            corpora.append(("directory", .directory(path: directory, seed: 0)))
        }
        var fields: [String] = ["\"bench\": \"tokenizer\"", "\"vocab\": \(vocab)"]
        for (label, source) in corpora {
            let r = try TokenizerBenchmark.run(source: source, bytes: bytes, vocabularySize: vocab)
            fields += [
                "\"\(label)_bytes\": \(r.bytes)",
                "\"\(label)_train_seconds\": \(String(format: "%.3f", r.trainSeconds))",
                "\"\(label)_encode_mb_per_s\": \(String(format: "%.2f", r.encodeMBPerSecond))",
                "\"\(label)_decode_mb_per_s\": \(String(format: "%.2f", r.decodeMBPerSecond))",
                "\"\(label)_bytes_per_token\": \(String(format: "%.3f", r.bytesPerToken))",
                "\"\(label)_roundtrip\": \(r.roundTrips)",
            ]
            if !json {
                print("\(label): \(r.bytes) bytes, train \(String(format: "%.2f", r.trainSeconds)) s, encode \(String(format: "%.2f", r.encodeMBPerSecond)) MB/s, decode \(String(format: "%.2f", r.decodeMBPerSecond)) MB/s, \(String(format: "%.2f", r.bytesPerToken)) bytes/token, round trip \(r.roundTrips ? "ok" : "FAILED")")
            }
        }
        if json { print("{" + fields.joined(separator: ", ") + "}") }
    }
}
