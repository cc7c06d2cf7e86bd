import Foundation
import XCTest
@testable import PythonCode

final class CorpusTests: XCTestCase {
    private var root: String!

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "corpus-\(UUID().uuidString)"
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/pkg/sub", withIntermediateDirectories: true)
        for i in 0..<40 {
            let dir = i % 3 == 0 ? "/pkg/sub" : (i % 3 == 1 ? "/pkg" : "")
            try "x\(i) = \(i)\n".write(toFile: "\(root!)\(dir)/m\(i).py", atomically: true, encoding: .utf8)
        }
        try "not python".write(toFile: root + "/notes.txt", atomically: true, encoding: .utf8)
        try Data([0x78, 0x20, 0x3D, 0x20, 0xFF, 0xFE, 0x0A]).write(to: URL(fileURLWithPath: root + "/pkg/latin.py"))
        try fm.createSymbolicLink(atPath: root + "/broken.py", withDestinationPath: root + "/does-not-exist.py")
    }

    override func tearDownWithError() throws {
        try FileManager.default.removeItem(atPath: root)
    }

    func testFindsPythonFilesRecursivelyAndCountsSkipped() throws {
        let corpus = try DirectoryCorpus(root: root, seed: 1, heldOutPercent: 20)
        let all = corpus.train + corpus.heldOut
        XCTAssertEqual(all.count, 40)
        XCTAssertEqual(Set(all.map(\.relativePath)).count, 40)
        XCTAssertTrue(all.contains { $0.relativePath == "pkg/sub/m0.py" && $0.text == "x0 = 0\n" })
        XCTAssertEqual(corpus.nonUTF8Count, 1)
        XCTAssertEqual(corpus.unreadableCount, 1)
        XCTAssertFalse(corpus.heldOut.isEmpty)
        XCTAssertFalse(corpus.train.isEmpty)
    }

    func testOrderIsDeterministicAndSplitIsByPath() throws {
        let a = try DirectoryCorpus(root: root, seed: 1, heldOutPercent: 20)
        let b = try DirectoryCorpus(root: root, seed: 1, heldOutPercent: 20)
        let c = try DirectoryCorpus(root: root, seed: 2, heldOutPercent: 20)
        XCTAssertEqual(a.train, b.train)
        XCTAssertEqual(a.heldOut, b.heldOut)
        XCTAssertNotEqual(a.train.map(\.relativePath), c.train.map(\.relativePath), "seed should shuffle")
        XCTAssertEqual(Set(a.heldOut.map(\.relativePath)), Set(c.heldOut.map(\.relativePath)), "split must not depend on seed")
        for f in a.heldOut { XCTAssertTrue(DirectoryCorpus.isHeldOut(f.relativePath, percent: 20)) }
        for f in a.train { XCTAssertFalse(DirectoryCorpus.isHeldOut(f.relativePath, percent: 20)) }
    }

    func testMissingDirectoryAndEmptyDirectoryAreClearErrors() throws {
        XCTAssertThrowsError(try DirectoryCorpus(root: root + "/nope")) { e in
            XCTAssertTrue("\(e)".contains("/nope"))
        }
        let empty = root + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: false)
        XCTAssertThrowsError(try DirectoryCorpus(root: empty)) { e in
            XCTAssertTrue("\(e)".contains("no readable UTF-8 .py files"))
        }
    }

    func testWorksOnPythonStandardLibrary() throws {
        let stdlib = "/usr/lib/python3.11/json"
        guard FileManager.default.fileExists(atPath: stdlib) else { throw XCTSkip("\(stdlib) not present") }
        let corpus = try DirectoryCorpus(root: stdlib, seed: 0, heldOutPercent: 30)
        XCTAssertGreaterThan(corpus.train.count + corpus.heldOut.count, 3)
        XCTAssertTrue((corpus.train + corpus.heldOut).contains { $0.relativePath == "decoder.py" })
    }

    func testTrainingTokensAreDeterministicSizedAndDisjointStreams() throws {
        let tok = TokenizerTests.syntheticTokenizer
        let source = CorpusSource.synthetic(seed: 4)
        let a = try source.tokens(tokenizer: tok, trainTokens: 20_000, heldOutTokens: 5_000)
        let b = try source.tokens(tokenizer: tok, trainTokens: 20_000, heldOutTokens: 5_000)
        XCTAssertEqual(a.train, b.train)
        XCTAssertEqual(a.heldOut, b.heldOut)
        XCTAssertEqual(a.train.count, 20_000)
        XCTAssertEqual(a.heldOut.count, 5_000)
        XCTAssertNotEqual(Array(a.train.prefix(5_000)), a.heldOut)
        let firstProgram = SyntheticPython(seed: 4, stream: 0).first(where: { _ in true })!
        XCTAssertEqual(Array(a.train.prefix(tok.encode(firstProgram).count)).map(Int.init), tok.encode(firstProgram))
        XCTAssertTrue(a.train.allSatisfy { Int($0) < tok.vocabularySize })

        let dir = try CorpusSource.directory(path: root, seed: 0).tokens(tokenizer: tok, trainTokens: 1_000_000, heldOutTokens: 10)
        XCTAssertLessThan(dir.train.count, 1_000_000, "a small directory gives all it has")
        XCTAssertTrue((1...10).contains(dir.heldOut.count))
        XCTAssertEqual(CorpusSource(argument: "synthetic", seed: 3), .synthetic(seed: 3))
        XCTAssertEqual(CorpusSource(argument: "/x", seed: 3), .directory(path: "/x", seed: 3))
    }

    func testTokenFileIsLittleEndianUInt16() throws {
        let path = root + "/t.bin"
        try writeTokenFile([1, 258, 65535], to: path)
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), [1, 0, 2, 1, 255, 255])
    }
}
