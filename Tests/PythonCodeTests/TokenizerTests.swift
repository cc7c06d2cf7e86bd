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

    /// The machine's Python standard library (a real directory of `.py` files), if there is one.
    static let standardLibrary: String? = {
        let fm = FileManager.default
        for parent in ["/usr/lib", "/usr/local/lib"] {
            let names = ((try? fm.contentsOfDirectory(atPath: parent)) ?? []).filter { $0.hasPrefix("python3") }.sorted()
            if let name = names.first(where: { fm.fileExists(atPath: "\(parent)/\($0)/os.py") }) { return "\(parent)/\(name)" }
        }
        return nil
    }()

    func testReservedPiecesBecomeWholeTokensBeforeTheMerges() throws {
        var g = SyntheticPython(seed: 3)
        let text = g.text(bytes: 50_000)
        let reserved = [" enumerate", " range", " ==", " =", "]]", " zebra"]
        let tok = try BPETokenizer.train(on: text, vocabularySize: 320, reserving: reserved)
        XCTAssertEqual(tok.vocabularySize, 320)
        for piece in reserved { XCTAssertEqual(tok.encode(piece).count, 1, "\(piece.debugDescription) is not one token") }
        // Prefixes are shared: " =" is built once and " ==" on top of it; " zebra" never occurs
        // in the text and is still reserved.
        XCTAssertEqual(tok.tokenBytes[256], Array(" e".utf8))
        let reservedMerges = 9 + 5 + 2 + 1 + 5
        XCTAssertEqual(Set(tok.tokenBytes[256..<(256 + reservedMerges)].map { String(decoding: $0, as: UTF8.self) })
                        .isSuperset(of: reserved), true)
        // Learned merges follow, on the words as the reserved merges left them, and coding still
        // round-trips; a reserved piece inside a longer one is its prefix token.
        XCTAssertEqual(tok.encode(" ranges").first, tok.encode(" range").first)
        XCTAssertTrue(tok.encode("for i, x in enumerate(items):").contains(tok.encode(" enumerate")[0]))
        XCTAssertEqual(tok.decodeString(tok.encode(text)), text)
        XCTAssertEqual(try BPETokenizer.train(on: text, vocabularySize: 320, reserving: reserved), tok, "deterministic")
        let plain = try BPETokenizer.train(on: text, vocabularySize: 320)
        XCTAssertNotEqual(plain, tok)
    }

    func testReservationsThatCannotBeMadeAreClearErrors() throws {
        XCTAssertThrowsError(try BPETokenizer.train(on: "x = 1", vocabularySize: 260, reserving: [" enumerate"])) { e in
            XCTAssertEqual(e as? TokenizerError, .cannotReserve(piece: " enumerate", reason: "the vocabulary has room for only 4 merges"))
        }
        XCTAssertThrowsError(try BPETokenizer.train(on: "x = 1", vocabularySize: 300, reserving: ["x = "])) { e in
            XCTAssertEqual(e as? TokenizerError, .cannotReserve(piece: "x = ", reason: "it is not one pre-tokenization piece"))
        }
        XCTAssertThrowsError(try BPETokenizer.train(on: "x = 1", vocabularySize: 300, reserving: [""]))
        XCTAssertThrowsError(try BPETokenizer.train(on: "x == 1", vocabularySize: 300, reserving: ["==", " =="])) { e in
            XCTAssertEqual(e as? TokenizerError, .cannotReserve(piece: " ==", reason: "the merges of a piece reserved before it split it"))
        }
    }

    func testCandidatePiecesAreTheFirstPiecesOfEveryTasksCandidates() {
        let pieces = Set(PythonTask.candidatePieces.map { String(decoding: $0, as: UTF8.self) })
        XCTAssertTrue(pieces.isSuperset(of: ["\"", "'", "]]", "]", ".", " +=", ":", "\n", "}", ")", " ==", " =", " enumerate", " range"]))
        XCTAssertTrue(pieces.isSuperset(of: Pools.shortVariables.map { " " + $0 }), "var_swap compares the names it swaps")
        XCTAssertEqual(pieces.count, PythonTask.candidatePieces.count, "listed once each")
    }

    /// The synthetic corpus makes every candidate one token by itself, so its tokenizer is plain
    /// BPE, exactly as before reservation existed.
    func testSyntheticCorpusKeepsThePlainTokenizer() throws {
        var g = SyntheticPython(seed: 0)
        let text = Array(g.text(bytes: 1_000_000).utf8)
        XCTAssertTrue(Self.syntheticTokenizer.servesTasks)
        for task in PythonTask.all {
            guard let fixed = task.fixedCandidates else { continue }
            XCTAssertEqual(Self.syntheticTokenizer.encode(fixed.target).count, 1, task.name)
            XCTAssertEqual(Self.syntheticTokenizer.encode(fixed.alt).count, 1, task.name)
        }
        let served = try BPETokenizer.trainServingTasks(on: text, vocabularySize: 512)
        XCTAssertEqual(served.tokenizer, Self.syntheticTokenizer)
        XCTAssertEqual(served.reserved, [])
    }

    /// On real code at the default vocabulary, plain BPE leaves candidates split (" enumerate",
    /// " range", "]]", " +=", many names), and the sweep's tokenizer reserves them: every task then
    /// makes its pairs with distinct single-token candidates.
    func testStandardLibraryAtTheDefaultVocabularyServesEveryTask() throws {
        guard let stdlib = Self.standardLibrary else { throw XCTSkip("no Python standard library on this machine") }
        let text = try CorpusSource.directory(path: stdlib, seed: 0).trainingText(bytes: 1_000_000)
        XCTAssertGreaterThan(text.count, 500_000)
        let plain = try BPETokenizer.train(on: text, vocabularySize: 512)
        XCTAssertFalse(plain.servesTasks, "plain BPE on \(stdlib) already serves the tasks; this test shows nothing")
        let (tok, reserved) = try BPETokenizer.trainServingTasks(on: text, vocabularySize: 512)
        XCTAssertEqual(reserved, plain.splitCandidatePieces)
        XCTAssertEqual(tok.vocabularySize, 512)
        XCTAssertTrue(tok.servesTasks)
        XCTAssertEqual(tok.splitCandidatePieces, [], "every candidate piece, every swappable name too, is one token")
        XCTAssertEqual(tok.decode(tok.encode(bytes: text)), text)
        for task in PythonTask.all {
            let splits = try task.makePairs(tokenizer: tok, seed: 0, trainPairs: 40, testPairs: 20)
            let c = splits.test.candidates
            for p in 0..<splits.test.promptCount { XCTAssertNotEqual(c[2 * p], c[2 * p + 1], task.name) }
            if let fixed = task.fixedCandidates {
                XCTAssertEqual(Int(c[0]), tok.encode(fixed.target).first, task.name)
                XCTAssertEqual(tok.encode(fixed.target).count, 1, task.name)
                XCTAssertEqual(tok.encode(fixed.alt).count, 1, task.name)
            }
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
