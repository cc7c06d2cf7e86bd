import Foundation

/// Training batches from a flat token array: random windows of length + 1 tokens whose starts depend
/// only on (seed, step), so a resumed run sees exactly the batches an uninterrupted run sees.
public struct TokenWindows: Sendable {
    public let tokens: [Int32]
    public let length: Int

    /// `tokens`: a flat stream of ids below `vocab`, at least length + 1 of them.
    public init(tokens: [Int32], length: Int, vocab: Int, name: String = "token stream") throws {
        guard tokens.count >= length + 1 else {
            throw SparseGPTError.badInput("\(name) has \(tokens.count) tokens, fewer than one window of \(length + 1)")
        }
        if let bad = tokens.firstIndex(where: { $0 < 0 || Int($0) >= vocab }) {
            throw SparseGPTError.badInput("\(name): token \(tokens[bad]) at index \(bad) is outside the vocabulary 0..<\(vocab)")
        }
        self.tokens = tokens
        self.length = length
    }

    /// Windows over uint16 token ids (the token-file format).
    public init(tokens: [UInt16], length: Int, vocab: Int, name: String = "token stream") throws {
        try self.init(tokens: tokens.map { Int32($0) }, length: length, vocab: vocab, name: name)
    }

    /// The batch of optimizer step `step`: inputs and next-token targets, batch x length each.
    public func batch(step: Int, seed: UInt64, size: Int) -> (inputs: [Int32], targets: [Int32]) {
        var rng = RandomGenerator(seed: seed, stream: 0xBA7C_0000 &+ UInt64(step))
        var x = [Int32](), y = [Int32]()
        x.reserveCapacity(size * length); y.reserveCapacity(size * length)
        let starts = tokens.count - length
        for _ in 0..<size {
            let s = rng.below(starts)
            x += tokens[s..<(s + length)]
            y += tokens[(s + 1)...(s + length)]
        }
        return (x, y)
    }

    /// `count` evenly spaced windows of length + 1 tokens (the reference's held-out sampling), row-major.
    public func evenlySpacedWindows(count: Int) -> [Int32] {
        let last = tokens.count - length - 1
        var out = [Int32]()
        out.reserveCapacity(count * (length + 1))
        for i in 0..<count {
            let s = count == 1 ? 0 : Int(Double(last) * Double(i) / Double(count - 1))
            out += tokens[s...(s + length)]
        }
        return out
    }
}

/// A seeded stream of uniformly random token ids (for benchmarks and runs without a corpus).
public func randomTokens(count: Int, vocab: Int, seed: UInt64) -> [Int32] {
    var rng = RandomGenerator(seed: seed, stream: 0x70C5)
    return (0..<count).map { _ in Int32(rng.below(vocab)) }
}

/// Reads a flat little-endian uint16 token file (the reference's token format).
public func readTokenFile(_ path: String) throws -> [Int32] {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw SparseGPTError.badInput("cannot read token file \(path)")
    }
    guard data.count % 2 == 0 else {
        throw SparseGPTError.badInput("token file \(path) has an odd size of \(data.count) bytes (expected uint16 ids)")
    }
    return data.withUnsafeBytes { raw in
        (0..<(data.count / 2)).map { Int32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
    }
}
