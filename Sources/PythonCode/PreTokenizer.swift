/// The method's pre-tokenization: text is split into pieces before BPE merges, and merges
/// never cross a piece boundary. A piece is one of
/// - a run of letters, digits, `_` (and non-ASCII bytes) with at most one leading space;
/// - a run of punctuation with at most one leading space;
/// - a newline with the spaces and tabs (indentation) that follow it;
/// - any other run of whitespace (a space directly before a word or punctuation is left to it).
///
/// So `abc"` is `abc` + `"`, `x = [[1` is `x` + ` =` + ` [[` + `1`, and `]]` stays one piece.
public enum PreTokenizer {
    enum ByteClass: UInt8 {
        case word, punctuation, newline, space
    }

    static let classes: [ByteClass] = (0..<256).map { b in
        switch UInt8(b) {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), 0x80...0xFF:
            return .word
        case 0x0A: return .newline
        case 0x20, 0x09, 0x0B, 0x0C, 0x0D: return .space
        default: return .punctuation
        }
    }

    /// Calls `body(start, end)` for each piece of `bytes`, in order; the pieces tile the input.
    @inline(__always)
    static func forEachPiece(_ bytes: UnsafeBufferPointer<UInt8>, _ body: (Int, Int) -> Void) {
        let n = bytes.count
        var i = 0
        classes.withUnsafeBufferPointer { cls in
            while i < n {
                let start = i
                switch cls[Int(bytes[i])] {
                case .newline:
                    i += 1
                    while i < n && (bytes[i] == 0x20 || bytes[i] == 0x09) { i += 1 }
                case .word, .punctuation:
                    let c = cls[Int(bytes[i])]
                    i += 1
                    while i < n && cls[Int(bytes[i])] == c { i += 1 }
                case .space:
                    while i < n && cls[Int(bytes[i])] == .space { i += 1 }
                    // A final plain space before a word or punctuation run belongs to that run.
                    if i < n && bytes[i - 1] == 0x20 {
                        let next = cls[Int(bytes[i])]
                        if next == .word || next == .punctuation {
                            if i - 1 > start { body(start, i - 1) }
                            let wordStart = i - 1
                            while i < n && cls[Int(bytes[i])] == next { i += 1 }
                            body(wordStart, i)
                            continue
                        }
                    }
                }
                body(start, i)
            }
        }
    }

    /// The pieces of `bytes`, as byte arrays (for tests and inspection; the tokenizer uses ranges).
    public static func pieces(_ bytes: [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        bytes.withUnsafeBufferPointer { buf in
            forEachPiece(buf) { s, e in out.append(Array(buf[s..<e])) }
        }
        return out
    }

    public static func pieces(_ text: String) -> [String] {
        pieces(Array(text.utf8)).map { String(decoding: $0, as: UTF8.self) }
    }
}
