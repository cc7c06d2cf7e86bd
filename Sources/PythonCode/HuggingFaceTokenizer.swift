import Foundation

/// A byte-level BPE vocabulary written as a Hugging Face `tokenizers` tokenizer.json, so Python's
/// `tokenizers.Tokenizer.from_file` encodes text to the same ids as Circuitry.
///
/// The pipeline it describes: no normalizer; a `Split` pre-tokenizer whose regex gives exactly the
/// pieces of `PreTokenizer`, then `ByteLevel` (without its own regex) to map each byte to the GPT-2
/// printable character; a BPE model over those characters with the merges in rank order. Whole
/// tokens (matched in the raw text before pre-tokenization, like Hugging Face's added tokens) are
/// written as `added_tokens`. The file does not depend on how the vocabulary was built: any id
/// order works as long as each merge result's bytes are its two parts' bytes.
public struct HuggingFaceTokenizer: Sendable {
    public struct Merge: Sendable, Equatable {
        public var left: Int, right: Int, result: Int
        public init(left: Int, right: Int, result: Int) { self.left = left; self.right = right; self.result = result }
    }

    /// The bytes of each token id.
    public let tokenBytes: [[UInt8]]
    /// In rank order: the lowest rank merges first.
    public let merges: [Merge]
    /// Ids of tokens matched whole in the text before pre-tokenization.
    public let wholeTokens: [Int]

    public init(tokenBytes: [[UInt8]], merges: [Merge], wholeTokens: [Int] = []) throws {
        func fail(_ field: String, _ reason: String) -> TokenizerError {
            .malformed(file: "tokenizer.json export", field: field, reason: reason)
        }
        for (r, m) in merges.enumerated() {
            guard [m.left, m.right, m.result].allSatisfy({ tokenBytes.indices.contains($0) }) else {
                throw fail("merges[\(r)]", "refers to an id outside 0..<\(tokenBytes.count)")
            }
            guard tokenBytes[m.result] == tokenBytes[m.left] + tokenBytes[m.right] else {
                throw fail("merges[\(r)]", "token \(m.result)'s bytes are not the bytes of \(m.left) followed by \(m.right)")
            }
        }
        // Hugging Face keys its vocabulary by the token's text: two ids with the same bytes cannot both exist there.
        var seen: [[UInt8]: Int] = [:]
        for (id, bytes) in tokenBytes.enumerated() {
            if let first = seen[bytes] {
                throw fail("vocab", "tokens \(first) and \(id) stand for the same bytes \(bytes); a tokenizer.json vocabulary maps each text to one id")
            }
            seen[bytes] = id
        }
        for id in wholeTokens where String(bytes: tokenBytes[id], encoding: .utf8) == nil {
            throw fail("added_tokens", "whole token \(id) is not valid UTF-8 text")
        }
        self.tokenBytes = tokenBytes
        self.merges = merges
        self.wholeTokens = wholeTokens
    }

    /// The regex of `PreTokenizer`'s pieces, in the order its cases are tried: a word run or a
    /// punctuation run with at most one leading space, a newline with its indentation, a whitespace
    /// run up to the space that leads a following word or punctuation run, any other whitespace run.
    /// Words are ASCII letters, digits, `_` and every non-ASCII character (whose UTF-8 bytes are all
    /// word bytes); whitespace is tab, vertical tab, form feed, carriage return and space.
    public static let pieceRegex: String = {
        let word = #"[^\x00-\x2F\x3A-\x40\x5B-\x5E\x60\x7B-\x7F]"#
        let punctuation = #"[\x00-\x08\x0E-\x1F\x21-\x2F\x3A-\x40\x5B-\x5E\x60\x7B-\x7F]"#
        let space = #"[\t\x0B\x0C\r ]"#
        return " ?\(word)+| ?\(punctuation)+|\\n[ \\t]*|\(space)+(?= [^\\t\\n\\x0B\\x0C\\r ])|\(space)+"
    }()

    /// GPT-2's printable stand-in for each byte, as the `ByteLevel` pre-tokenizer maps them.
    public static let byteCharacters: [Character] = {
        var printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        var characters = printable
        var next = 256
        for b in 0..<256 where !printable.contains(b) {
            printable.append(b)
            characters.append(next)
            next += 1
        }
        var table = [Character](repeating: " ", count: 256)
        for (b, c) in zip(printable, characters) { table[b] = Character(UnicodeScalar(UInt32(c))!) }
        return table
    }()

    public static func byteLevelText(_ bytes: [UInt8]) -> String { String(bytes.map { byteCharacters[Int($0)] }) }

    // The document, field for field as `tokenizers` serializes it.
    private struct Document: Encodable {
        var version = "1.0"
        var added_tokens: [AddedToken]
        var pre_tokenizer: PreTokenizers
        var decoder: ByteLevel
        var model: Model

        // The steps this tokenizer does not use are written as null, as `tokenizers` writes them.
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(version, forKey: .version)
            try c.encodeNil(forKey: .truncation)
            try c.encodeNil(forKey: .padding)
            try c.encode(added_tokens, forKey: .added_tokens)
            try c.encodeNil(forKey: .normalizer)
            try c.encode(pre_tokenizer, forKey: .pre_tokenizer)
            try c.encodeNil(forKey: .post_processor)
            try c.encode(decoder, forKey: .decoder)
            try c.encode(model, forKey: .model)
        }
        enum CodingKeys: String, CodingKey {
            case version, truncation, padding, added_tokens, normalizer, pre_tokenizer, post_processor, decoder, model
        }
    }
    private struct AddedToken: Encodable {
        var id: Int
        var content: String
        var single_word = false, lstrip = false, rstrip = false, normalized = false, special = false
    }
    private struct PreTokenizers: Encodable {
        var type = "Sequence"
        var pretokenizers: [Step]
    }
    private enum Step: Encodable {
        case split(regex: String)
        case byteLevel(ByteLevel)

        func encode(to encoder: Encoder) throws {
            switch self {
            case .split(let regex):
                try SplitStep(pattern: ["Regex": regex]).encode(to: encoder)
            case .byteLevel(let step):
                try step.encode(to: encoder)
            }
        }
    }
    private struct SplitStep: Encodable {
        var type = "Split"
        var pattern: [String: String]
        var behavior = "Isolated"
        var invert = false
    }
    private struct ByteLevel: Encodable {
        var type = "ByteLevel"
        var add_prefix_space = false
        var trim_offsets = false
        var use_regex = false
    }
    private struct Model: Encodable {
        var type = "BPE"
        var fuse_unk = false
        var byte_fallback = false
        // Merges must apply by rank only, never a whole piece found in the vocabulary first.
        var ignore_merges = false
        var vocab: [String: Int]
        var merges: [[String]]
    }

    public func jsonData() throws -> Data {
        let texts = tokenBytes.map(Self.byteLevelText)
        let added = try wholeTokens.map { id -> AddedToken in
            guard let content = String(bytes: tokenBytes[id], encoding: .utf8) else {
                throw TokenizerError.malformed(file: "tokenizer.json export", field: "added_tokens", reason: "token \(id) is not UTF-8")
            }
            return AddedToken(id: id, content: content)
        }
        let document = Document(
            added_tokens: added,
            pre_tokenizer: PreTokenizers(pretokenizers: [.split(regex: Self.pieceRegex), .byteLevel(ByteLevel())]),
            decoder: ByteLevel(),
            model: Model(vocab: Dictionary(uniqueKeysWithValues: texts.enumerated().map { ($1, $0) }),
                         merges: merges.map { [texts[$0.left], texts[$0.right]] }))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(document)
    }

    public func save(to url: URL) throws {
        try jsonData().write(to: url, options: .atomic)
    }
}

extension BPETokenizer {
    /// This tokenizer in Hugging Face's format: ids 0...255 are the bytes, id 256 + r merge r.
    public func huggingFace() throws -> HuggingFaceTokenizer {
        try HuggingFaceTokenizer(tokenBytes: tokenBytes,
                                 merges: merges.enumerated().map { r, m in
                                     .init(left: Int(m.0), right: Int(m.1), result: 256 + r)
                                 })
    }
}
