import Foundation
import XCTest
@testable import PythonCode

final class TokenizerTests: XCTestCase {
    static let syntheticTokenizer: BPETokenizer = {
        var g = SyntheticPython(seed: 0)
        return try! BPETokenizer.train(on: g.text(bytes: 1_000_000), vocabularySize: 512)
    }()

    func testPreTokenizationPieces() {
        XCTAssertEqual(PreTokenizer.pieces("abc\""), ["abc", "\""])
        XCTAssertEqual(PreTokenizer.pieces("x = [[1, 2]]\n"), ["x", " =", " [[", "1", ",", " 2", "]]", "\n"])
        XCTAssertEqual(PreTokenizer.pieces("def f():\n    return True\n\nx"),
                       ["def", " f", "():", "\n    ", "return", " True", "\n", "\n", "x"])
        XCTAssertEqual(PreTokenizer.pieces("a  = b\t\tc"), ["a", " ", " =", " b", "\t\t", "c"])
        XCTAssertEqual(PreTokenizer.pieces("s = f\"{name} is\""), ["s", " =", " f", "\"{", "name", "}", " is", "\""])
        XCTAssertEqual(PreTokenizer.pieces("  \n"), ["  ", "\n"])
        XCTAssertEqual(PreTokenizer.pieces("caf\u{e9} x"), ["caf\u{e9}", " x"])
        let bytes: [UInt8] = Array("if x == 1:\r\n\tpass  # é\n".utf8) + [0xFF, 0x00, 0x20]
        XCTAssertEqual(PreTokenizer.pieces(bytes).flatMap { $0 }, bytes, "pieces must tile the input")
    }

    func testRoundTripOnRandomBytes() throws {
        let tok = Self.syntheticTokenizer
        var rng = SeededGenerator(seed: 9)
        for trial in 0..<300 {
            let n = rng.below(400)
            let alphabet: [UInt8] = Array(" \n\t\"'[]{}():=,._abcxyz019".utf8)
            let bytes: [UInt8] = (0..<n).map { _ in
                trial % 2 == 0 ? UInt8(truncatingIfNeeded: rng.next()) : rng.pick(alphabet)
            }
            XCTAssertEqual(tok.decode(tok.encode(bytes: bytes)), bytes, "trial \(trial)")
        }
        XCTAssertEqual(tok.encode(bytes: []), [])
    }

    func testRoundTripOnRealFilesAndPrograms() throws {
        let tok = Self.syntheticTokenizer
        var texts: [String] = Array(SyntheticPython(seed: 77).prefix(50))
        if let corpus = try? DirectoryCorpus(root: "/usr/lib/python3.11") {
            texts += corpus.train.prefix(40).map(\.text)
        }
        texts.append(try String(contentsOfFile: #filePath, encoding: .utf8))
        for text in texts {
            let ids = tok.encode(text)
            XCTAssertEqual(tok.decodeString(ids), text)
            XCTAssertTrue(ids.allSatisfy { $0 >= 0 && $0 < tok.vocabularySize })
        }
    }

    func testTrainingIsDeterministicAndCompresses() throws {
        var g = SyntheticPython(seed: 5)
        let text = Array(g.text(bytes: 300_000).utf8)
        let a = try BPETokenizer.train(on: text, vocabularySize: 400)
        let b = try BPETokenizer.train(on: text, vocabularySize: 400)
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.vocabularySize, 400)
        let ids = a.encode(bytes: text)
        XCTAssertLessThan(Double(ids.count), Double(text.count) / 2, "400 tokens should halve synthetic Python")
        // Every merge is a pair that actually occurs; no merge crosses a piece boundary.
        for bytes in a.tokenBytes[256...] {
            XCTAssertEqual(PreTokenizer.pieces(bytes).count, 1, "token \(bytes) crosses a piece boundary")
        }
    }

    /// The first merge must be the most frequent pair, and counts must be updated incrementally
    /// exactly as a naive recount would: compare against a brute-force trainer on a small text.
    func testIncrementalTrainingMatchesNaiveRecount() throws {
        var g = SyntheticPython(seed: 11)
        let text = Array(g.text(bytes: 20_000).utf8)
        let fast = try BPETokenizer.train(on: text, vocabularySize: 300)
        var words = PreTokenizer.pieces(text).map { $0.map { Int32($0) } }
        var naive: [(Int32, Int32)] = []
        for r in 0..<44 {
            var counts: [UInt64: Int] = [:]
            for w in words where w.count > 1 {
                for k in 0..<(w.count - 1) { counts[pairKey(w[k], w[k + 1]), default: 0] += 1 }
            }
            guard let best = counts.max(by: { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }),
                  best.value > 1 else { break }
            let a = Int32(best.key >> 32), b = Int32(best.key & 0xFFFF_FFFF)
            naive.append((a, b))
            words = words.map { w in
                var out: [Int32] = []
                var k = 0
                while k < w.count {
                    if k + 1 < w.count && w[k] == a && w[k + 1] == b { out.append(Int32(256 + r)); k += 2 } else { out.append(w[k]); k += 1 }
                }
                return out
            }
        }
        XCTAssertEqual(naive.count, 44)
        XCTAssertTrue(fast.merges.elementsEqual(naive) { $0 == $1 }, "incremental merges differ from a naive recount")
    }

    func testTaskTokensAreSingleTokensOnSyntheticCorpus() {
        let tok = Self.syntheticTokenizer
        for s in ["]]", " ==", " +=", " enumerate", " range", "\n    "] {
            XCTAssertEqual(tok.encode(s).count, 1, "\(s.debugDescription) should be one token")
        }
    }

    func testSaveAndLoad() throws {
        let tok = Self.syntheticTokenizer
        let path = NSTemporaryDirectory() + "tok-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try tok.save(to: path)
        let loaded = try BPETokenizer.load(from: path)
        XCTAssertEqual(loaded, tok)
        XCTAssertEqual(loaded.encode("for i, x in enumerate(items):\n"), tok.encode("for i, x in enumerate(items):\n"))
    }

    func testMalformedFilesNameTheFileAndField() throws {
        func error(_ json: String) -> TokenizerError? {
            do {
                _ = try BPETokenizer.decodeJSON(Data(json.utf8), file: "tok.json")
                return nil
            } catch let e as TokenizerError {
                return e
            } catch {
                return nil
            }
        }
        let header = "\"format\": \"circuitry-byte-bpe\", \"version\": 1"
        XCTAssertEqual(error("{"), .malformed(file: "tok.json", field: "(document)", reason: "not valid JSON"))
        XCTAssertEqual(error("{\"format\": \"gpt2\"}"), .malformed(file: "tok.json", field: "format", reason: "expected \"circuitry-byte-bpe\""))
        guard case .malformed(_, "merges", _)? = error("{\(header)}") else { return XCTFail("missing merges accepted") }
        guard case .malformed(_, "merges[1]", _)? = error("{\(header), \"merges\": [[1, 2], [3]]}") else { return XCTFail("short merge accepted") }
        guard case .malformed(_, "merges[0]", _)? = error("{\(header), \"merges\": [[1, 300]]}") else { return XCTFail("future id accepted") }
        guard case .malformed(_, "vocab_size", _)? = error("{\(header), \"vocab_size\": 512, \"merges\": [[1, 2]]}") else {
            return XCTFail("wrong vocab_size accepted")
        }
        XCTAssertThrowsError(try BPETokenizer.load(from: "/nonexistent/tok.json")) { e in
            XCTAssertTrue("\(e)".contains("/nonexistent/tok.json"))
        }
        XCTAssertThrowsError(try BPETokenizer.train(on: "abc", vocabularySize: 100))
    }
}
