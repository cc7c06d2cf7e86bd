import Foundation

public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    case invalidVocabularySize(Int)
    case malformed(file: String, field: String, reason: String)
    case cannotReserve(piece: String, reason: String)

    public var description: String {
        switch self {
        case .invalidVocabularySize(let n):
            return "vocabulary size \(n) is out of range: it must be between 256 and 65536"
        case .malformed(let file, let field, let reason):
            return "\(file): field '\(field)': \(reason)"
        case .cannotReserve(let piece, let reason):
            return "cannot reserve \(piece.debugDescription) as one token: \(reason)"
        }
    }
}

/// Byte-level BPE (GPT-2 style) over `PreTokenizer` pieces.
///
/// Token ids 0...255 are the bytes; id 256 + r is the r-th merge. Every byte string round-trips:
/// `decode(encode(x)) == x`.
public struct BPETokenizer: Sendable, Equatable {
    /// Merge r joins `merges[r].0` and `merges[r].1` into token 256 + r.
    public let merges: [(Int32, Int32)]
    /// The bytes each token id stands for.
    public let tokenBytes: [[UInt8]]
    private let ranks: [UInt64: Int32]

    public var vocabularySize: Int { 256 + merges.count }

    public static func == (a: BPETokenizer, b: BPETokenizer) -> Bool {
        a.merges.elementsEqual(b.merges) { $0.0 == $1.0 && $0.1 == $1.1 }
    }

    /// A tokenizer from a merge list; each merge may only use ids that exist before it.
    public init(merges: [(Int32, Int32)]) throws {
        var bytes = (0..<256).map { [UInt8($0)] }
        var ranks: [UInt64: Int32] = [:]
        for (r, (a, b)) in merges.enumerated() {
            let limit = Int32(256 + r)
            guard a >= 0, b >= 0, a < limit, b < limit else {
                throw TokenizerError.malformed(file: "merge list", field: "merges[\(r)]",
                                               reason: "[\(a), \(b)] refers to a token that does not exist yet (ids must be below \(limit))")
            }
            guard ranks[pairKey(a, b)] == nil else {
                throw TokenizerError.malformed(file: "merge list", field: "merges[\(r)]",
                                               reason: "[\(a), \(b)] repeats an earlier merge")
            }
            ranks[pairKey(a, b)] = Int32(r)
            bytes.append(bytes[Int(a)] + bytes[Int(b)])
        }
        guard bytes.count <= 65536 else { throw TokenizerError.invalidVocabularySize(bytes.count) }
        self.merges = merges
        self.tokenBytes = bytes
        self.ranks = ranks
    }

    // MARK: Training

    /// Learns `vocabularySize - 256` merges from `text`. Merges are chosen by the highest pair
    /// count, ties broken toward the lower (first, second) ids, so training is deterministic.
    /// Training stops early if no pair occurs twice.
    ///
    /// Each of `reserving` (pre-tokenization pieces, e.g. a task's candidates) becomes one whole
    /// token before anything is learned: the first merges build it left to right, one byte at a
    /// time, sharing prefixes with the pieces before it. Those merges have the lowest ranks, so a
    /// reserved piece always encodes to its one token, and learned merges build on top of them.
    public static func train(on text: [UInt8], vocabularySize: Int = 512, reserving: [[UInt8]] = []) throws -> BPETokenizer {
        guard (256...65536).contains(vocabularySize) else {
            throw TokenizerError.invalidVocabularySize(vocabularySize)
        }
        var trainer = MergeTrainer(text: text)
        let reservedMerges = try trainer.reserve(reserving, limit: vocabularySize - 256)
        let tokenizer = try BPETokenizer(merges: reservedMerges + trainer.learn(count: vocabularySize - 256 - reservedMerges.count,
                                                                               firstRank: reservedMerges.count))
        // Reserved merges of lower rank can cut into a later piece (reserving "==" before " ==").
        for piece in reserving where tokenizer.encode(bytes: piece).count != 1 {
            throw TokenizerError.cannotReserve(piece: String(decoding: piece, as: UTF8.self),
                                              reason: "the merges of a piece reserved before it split it")
        }
        return tokenizer
    }

    public static func train(on text: String, vocabularySize: Int = 512, reserving: [String] = []) throws -> BPETokenizer {
        try train(on: Array(text.utf8), vocabularySize: vocabularySize, reserving: reserving.map { Array($0.utf8) })
    }

    // MARK: Encoding

    public func encode(_ text: String) -> [Int] {
        encode(bytes: Array(text.utf8))
    }

    public func encode(bytes: [UInt8]) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(bytes.count / 3)
        var cache = PieceCache()
        encode(bytes: bytes, cache: &cache) { out.append(Int($0)) }
        return out
    }

    func encode(bytes: [UInt8], cache: inout PieceCache, emit: (Int32) -> Void) {
        bytes.withUnsafeBufferPointer { buf in
            PreTokenizer.forEachPiece(buf) { s, e in
                let n = e - s
                if n == 1 {
                    emit(Int32(buf[s]))
                    return
                }
                if n <= 7 {
                    var key = UInt64(n) << 56
                    for k in 0..<n { key |= UInt64(buf[s + k]) << (8 * k) }
                    if let hit = cache.short[key] {
                        hit.forEach(emit)
                    } else {
                        let ids = mergePiece(buf, s, e)
                        cache.short[key] = ids
                        ids.forEach(emit)
                    }
                } else {
                    let piece = Array(buf[s..<e])
                    if let hit = cache.long[piece] {
                        hit.forEach(emit)
                    } else {
                        let ids = mergePiece(buf, s, e)
                        cache.long[piece] = ids
                        ids.forEach(emit)
                    }
                }
            }
        }
    }

    /// Applies merges to one piece, lowest rank first, as they were learned.
    private func mergePiece(_ buf: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int) -> [Int32] {
        var ids = (s..<e).map { Int32(buf[$0]) }
        while ids.count > 1 {
            var best = Int32.max
            for k in 0..<(ids.count - 1) {
                if let r = ranks[pairKey(ids[k], ids[k + 1])], r < best { best = r }
            }
            if best == Int32.max { break }
            let (a, b) = merges[Int(best)]
            let merged = 256 + best
            var w = 0
            var k = 0
            while k < ids.count {
                if k + 1 < ids.count && ids[k] == a && ids[k + 1] == b {
                    ids[w] = merged
                    k += 2
                } else {
                    ids[w] = ids[k]
                    k += 1
                }
                w += 1
            }
            ids.removeLast(ids.count - w)
        }
        return ids
    }

    // MARK: Decoding

    public func decode(_ ids: [Int]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(ids.count * 3)
        for id in ids { out.append(contentsOf: tokenBytes[id]) }
        return out
    }

    /// Decoded text; invalid UTF-8 (possible only for ids cut mid-character) is replaced.
    public func decodeString(_ ids: [Int]) -> String {
        String(decoding: decode(ids), as: UTF8.self)
    }

    /// A readable form of one token, for listings: non-printing bytes escaped.
    public func display(_ id: Int) -> String {
        var s = ""
        for b in tokenBytes[id] {
            switch b {
            case 0x0A: s += "\\n"
            case 0x09: s += "\\t"
            case 0x20...0x7E: s.append(Character(UnicodeScalar(b)))
            default: s += String(format: "\\x%02x", b)
            }
        }
        return s
    }

    /// The first token of `continuation` tokenized on its own (a task candidate's token).
    public func firstToken(of continuation: String) -> Int? {
        encode(continuation).first
    }

    // MARK: JSON

    static let formatName = "circuitry-byte-bpe"

    public func jsonData() -> Data {
        var s = "{\n  \"format\": \"\(Self.formatName)\",\n  \"version\": 1,\n"
        s += "  \"pretokenizer\": \"words, punctuation, newline+indent, whitespace\",\n"
        s += "  \"vocab_size\": \(vocabularySize),\n  \"merges\": ["
        s += merges.map { "[\($0.0), \($0.1)]" }.joined(separator: ", ")
        s += "]\n}\n"
        return Data(s.utf8)
    }

    public func save(to path: String) throws {
        try jsonData().write(to: URL(fileURLWithPath: path))
    }

    public static func load(from path: String) throws -> BPETokenizer {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TokenizerError.malformed(file: path, field: "(file)", reason: "cannot be read: \(error.localizedDescription)")
        }
        return try decodeJSON(data, file: path)
    }

    public static func decodeJSON(_ data: Data, file: String) throws -> BPETokenizer {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw TokenizerError.malformed(file: file, field: "(document)", reason: "not valid JSON")
        }
        guard let root = object as? [String: Any] else {
            throw TokenizerError.malformed(file: file, field: "(document)", reason: "expected a JSON object")
        }
        guard let format = root["format"] as? String, format == formatName else {
            throw TokenizerError.malformed(file: file, field: "format", reason: "expected \"\(formatName)\"")
        }
        guard let version = root["version"] as? Int, version == 1 else {
            throw TokenizerError.malformed(file: file, field: "version", reason: "expected 1")
        }
        guard let rawMerges = root["merges"] as? [Any] else {
            throw TokenizerError.malformed(file: file, field: "merges", reason: "expected an array of [first, second] id pairs")
        }
        var merges: [(Int32, Int32)] = []
        merges.reserveCapacity(rawMerges.count)
        for (r, m) in rawMerges.enumerated() {
            guard let pair = m as? [Int], pair.count == 2,
                  let a = Int32(exactly: pair[0]), let b = Int32(exactly: pair[1]) else {
                throw TokenizerError.malformed(file: file, field: "merges[\(r)]", reason: "expected [first, second] integer ids")
            }
            merges.append((a, b))
        }
        let tokenizer: BPETokenizer
        do {
            tokenizer = try BPETokenizer(merges: merges)
        } catch TokenizerError.malformed(_, let field, let reason) {
            throw TokenizerError.malformed(file: file, field: field, reason: reason)
        }
        if let size = root["vocab_size"] as? Int, size != tokenizer.vocabularySize {
            throw TokenizerError.malformed(file: file, field: "vocab_size",
                                           reason: "says \(size) but the merges give \(tokenizer.vocabularySize)")
        }
        return tokenizer
    }
}

@inline(__always)
func pairKey(_ a: Int32, _ b: Int32) -> UInt64 {
    UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
}

/// Token ids of pieces already encoded: short pieces keyed by their packed bytes and length.
struct PieceCache {
    var short: [UInt64: [Int32]] = [:]
    var long: [[UInt8]: [Int32]] = [:]
}

/// Incremental BPE training over the unique pieces of a text, weighted by their counts.
struct MergeTrainer {
    private var words: [[Int32]] = []
    private var wordCounts: [Int] = []
    private var pairCounts: [UInt64: Int] = [:]
    /// Words that contained each pair when it was last counted (may hold stale entries).
    private var pairWords: [UInt64: [Int32]] = [:]
    /// The last merge applied to each word, so a word listed twice for a pair is merged once.
    private var lastMerged: [Int32] = []

    init(text: [UInt8]) {
        var shortCounts: [UInt64: Int] = [:]
        var longCounts: [[UInt8]: Int] = [:]
        text.withUnsafeBufferPointer { buf in
            PreTokenizer.forEachPiece(buf) { s, e in
                let n = e - s
                guard n > 1 else { return }  // single bytes hold no pairs
                if n <= 7 {
                    var key = UInt64(n) << 56
                    for k in 0..<n { key |= UInt64(buf[s + k]) << (8 * k) }
                    shortCounts[key, default: 0] += 1
                } else {
                    longCounts[Array(buf[s..<e]), default: 0] += 1
                }
            }
        }
        // Sorted so word indices, and hence everything after, do not depend on hash order.
        for (key, count) in shortCounts.sorted(by: { $0.key < $1.key }) {
            let n = Int(key >> 56)
            words.append((0..<n).map { Int32((key >> (8 * UInt64($0))) & 0xFF) })
            wordCounts.append(count)
        }
        for (piece, count) in longCounts.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            words.append(piece.map { Int32($0) })
            wordCounts.append(count)
        }
        lastMerged = [Int32](repeating: -1, count: words.count)
        for (w, word) in words.enumerated() {
            for k in 0..<(word.count - 1) {
                let p = pairKey(word[k], word[k + 1])
                pairCounts[p, default: 0] += wordCounts[w]
                pairWords[p, default: []].append(Int32(w))
            }
        }
    }

    /// The merges that make each piece one token (see `BPETokenizer.train`), applied to the
    /// words; at most `limit` of them.
    mutating func reserve(_ pieces: [[UInt8]], limit: Int) throws -> [(Int32, Int32)] {
        var merges: [(Int32, Int32)] = []
        var tokens: [[UInt8]: Int32] = [:]
        for piece in pieces {
            guard PreTokenizer.pieces(piece).count == 1 else {
                throw TokenizerError.cannotReserve(piece: String(decoding: piece, as: UTF8.self),
                                                  reason: "it is not one pre-tokenization piece")
            }
            var current = Int32(piece[0])
            for end in stride(from: 2, through: piece.count, by: 1) {
                if let known = tokens[Array(piece[..<end])] {
                    current = known
                    continue
                }
                guard merges.count < limit else {
                    throw TokenizerError.cannotReserve(piece: String(decoding: piece, as: UTF8.self),
                                                      reason: "the vocabulary has room for only \(limit) merges")
                }
                let merged = Int32(256 + merges.count)
                merge(current, Int32(piece[end - 1]), into: merged)
                merges.append((current, Int32(piece[end - 1])))
                tokens[Array(piece[..<end])] = merged
                current = merged
            }
        }
        return merges
    }

    /// Learns `count` merges, the first of rank `firstRank` (after any reserved ones).
    mutating func learn(count: Int, firstRank: Int = 0) -> [(Int32, Int32)] {
        var merges: [(Int32, Int32)] = []
        for r in firstRank..<(firstRank + max(0, count)) {
            var best: UInt64 = 0
            var bestCount = 1
            for (p, c) in pairCounts where c > bestCount || (c == bestCount && c > 1 && p < best) {
                best = p
                bestCount = c
            }
            if bestCount < 2 { break }
            let a = Int32(truncatingIfNeeded: best >> 32)
            let b = Int32(truncatingIfNeeded: best & 0xFFFF_FFFF)
            merges.append((a, b))
            merge(a, b, into: Int32(256 + r))
        }
        return merges
    }

    /// Replaces the pair (a, b) by `merged` in every word that holds it.
    private mutating func merge(_ a: Int32, _ b: Int32, into merged: Int32) {
        let pair = pairKey(a, b)
        for w32 in pairWords[pair] ?? [] {
            let w = Int(w32)
            if lastMerged[w] == merged { continue }
            lastMerged[w] = merged
            apply(a, b, merged, toWord: w)
        }
        pairCounts[pair] = nil
        pairWords[pair] = nil
    }

    private mutating func apply(_ a: Int32, _ b: Int32, _ merged: Int32, toWord w: Int) {
        let old = words[w]
        var found = false
        for k in 0..<(old.count - 1) where old[k] == a && old[k + 1] == b {
            found = true
            break
        }
        guard found else { return }
        let c = wordCounts[w]
        for k in 0..<(old.count - 1) {
            let p = pairKey(old[k], old[k + 1])
            pairCounts[p, default: 0] -= c
            if pairCounts[p] == 0 { pairCounts[p] = nil }
        }
        var new: [Int32] = []
        new.reserveCapacity(old.count)
        var k = 0
        while k < old.count {
            if k + 1 < old.count && old[k] == a && old[k + 1] == b {
                new.append(merged)
                k += 2
            } else {
                new.append(old[k])
                k += 1
            }
        }
        for k in 0..<max(0, new.count - 1) {
            let p = pairKey(new[k], new[k + 1])
            pairCounts[p, default: 0] += c
            if new[k] == merged || new[k + 1] == merged {
                pairWords[p, default: []].append(Int32(w))
            }
        }
        words[w] = new
    }
}
