import Foundation

/// Where pretraining text comes from.
public enum CorpusSource: Equatable, Sendable, CustomStringConvertible {
    /// The synthetic generator: train text from stream 0 of `seed`, held-out from stream 1.
    case synthetic(seed: UInt64)
    /// `.py` files under `path`, split by path hash, in an order shuffled by `seed`.
    case directory(path: String, seed: UInt64)

    /// `"synthetic"` or a directory path, as on the command line.
    public init(argument: String, seed: UInt64) {
        self = argument == "synthetic" ? .synthetic(seed: seed) : .directory(path: argument, seed: seed)
    }

    public var description: String {
        switch self {
        case .synthetic(let seed): return "synthetic (seed \(seed))"
        case .directory(let path, let seed): return "\(path) (seed \(seed))"
        }
    }

    /// Train and held-out documents, in their deterministic order, lazily for the synthetic
    /// corpus; a directory is read once, here.
    public func documents() throws -> CorpusDocuments {
        switch self {
        case .synthetic(let seed):
            return CorpusDocuments(train: AnySequence { SyntheticPython(seed: seed, stream: 0) },
                                   heldOut: AnySequence { SyntheticPython(seed: seed, stream: 1) }, skippedNonUTF8: [])
        case .directory(let path, let seed):
            let corpus = try DirectoryCorpus(root: path, seed: seed)
            guard !corpus.train.isEmpty else { throw CorpusError.emptySplit(path, split: "train") }
            guard !corpus.heldOut.isEmpty else { throw CorpusError.emptySplit(path, split: "held-out") }
            return CorpusDocuments(train: AnySequence(corpus.train.lazy.map(\.text)),
                                   heldOut: AnySequence(corpus.heldOut.lazy.map(\.text)), skippedNonUTF8: corpus.nonUTF8Paths)
        }
    }

    /// See `CorpusDocuments.trainingText`.
    public func trainingText(bytes: Int) throws -> [UInt8] {
        try documents().trainingText(bytes: bytes)
    }
}

/// A corpus's documents, read.
public struct CorpusDocuments {
    public let train: AnySequence<String>
    public let heldOut: AnySequence<String>
    /// Files of a directory left out because they are not UTF-8 (relative paths).
    public let skippedNonUTF8: [String]

    /// The first `bytes` bytes (or all, if the split is shorter) of the train split, documents
    /// separated by a newline: the text a tokenizer is trained on.
    public func trainingText(bytes: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes)
        for doc in train {
            if !out.isEmpty { out.append(0x0A) }
            out.append(contentsOf: doc.utf8)
            if out.count >= bytes { break }
        }
        return Array(out.prefix(bytes))
    }

    /// `trainTokens` train and `heldOutTokens` held-out tokens, documents encoded one after
    /// another (separated by a newline) and the stream cut at the requested length. A directory
    /// whose split is shorter gives all of its tokens. Deterministic for a source and tokenizer.
    public func tokens(tokenizer: BPETokenizer, trainTokens: Int, heldOutTokens: Int) -> TrainingTokens {
        TrainingTokens(train: Self.encode(train, tokenizer, limit: trainTokens),
                       heldOut: Self.encode(heldOut, tokenizer, limit: heldOutTokens))
    }

    private static func encode(_ docs: AnySequence<String>, _ tokenizer: BPETokenizer, limit: Int) -> [UInt16] {
        var out: [UInt16] = []
        out.reserveCapacity(limit)
        var cache = PieceCache()
        let newline = Array("\n".utf8)
        for doc in docs {
            if out.count >= limit { break }
            if !out.isEmpty { tokenizer.encode(bytes: newline, cache: &cache) { out.append(UInt16($0)) } }
            tokenizer.encode(bytes: Array(doc.utf8), cache: &cache) { out.append(UInt16($0)) }
        }
        return Array(out.prefix(limit))
    }
}

/// Flat token streams the trainer samples `context + 1` windows from.
public struct TrainingTokens: Sendable {
    public let train: [UInt16]
    public let heldOut: [UInt16]
}

public extension CorpusSource {
    /// See `CorpusDocuments.tokens`.
    func tokens(tokenizer: BPETokenizer, trainTokens: Int, heldOutTokens: Int) throws -> TrainingTokens {
        try documents().tokens(tokenizer: tokenizer, trainTokens: trainTokens, heldOutTokens: heldOutTokens)
    }
}

/// Writes tokens as a flat little-endian uint16 file (the reference trainer's format).
public func writeTokenFile(_ tokens: [UInt16], to path: String) throws {
    let data = tokens.map(\.littleEndian).withUnsafeBufferPointer { Data(buffer: $0) }
    try data.write(to: URL(fileURLWithPath: path))
}
