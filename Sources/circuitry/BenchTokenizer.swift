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
        var fields: [String: JSONScalar] = ["bench": .text("tokenizer"), "vocab": .integer(vocab)]
        for (label, source) in corpora {
            let r = try TokenizerBenchmark.run(source: source, bytes: bytes, vocabularySize: vocab)
            fields["\(label)_bytes"] = .integer(r.bytes)
            fields["\(label)_train_seconds"] = .number(r.trainSeconds, places: 3)
            fields["\(label)_encode_mb_per_s"] = .number(r.encodeMBPerSecond, places: 2)
            fields["\(label)_decode_mb_per_s"] = .number(r.decodeMBPerSecond, places: 2)
            fields["\(label)_bytes_per_token"] = .number(r.bytesPerToken, places: 3)
            fields["\(label)_roundtrip"] = .flag(r.roundTrips)
            if !json {
                print("\(label): \(r.bytes) bytes, train \(String(format: "%.2f", r.trainSeconds)) s, encode \(String(format: "%.2f", r.encodeMBPerSecond)) MB/s, decode \(String(format: "%.2f", r.decodeMBPerSecond)) MB/s, \(String(format: "%.2f", r.bytesPerToken)) bytes/token, round trip \(r.roundTrips ? "ok" : "FAILED")")
            }
        }
        if json { print(try JSONScalar.line(fields)) }
    }
}

/// One value of a flat JSON line of a benchmark.
enum JSONScalar: Encodable {
    case text(String), integer(Int), flag(Bool), number(Double, places: Int)

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .text(let s): try container.encode(s)
        case .integer(let n): try container.encode(n)
        case .flag(let b): try container.encode(b)
        case .number(let x, let places):
            let scale = pow(10, Double(places))
            try container.encode((x * scale).rounded() / scale)
        }
    }

    /// The fields as one JSON object on one line, keys sorted.
    static func line(_ fields: [String: JSONScalar]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(fields), as: UTF8.self)
    }
}
