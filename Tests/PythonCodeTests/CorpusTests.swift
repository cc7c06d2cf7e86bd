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
        XCTAssertEqual(corpus.nonUTF8Paths, ["pkg/latin.py"], "a file that is not UTF-8 is skipped and listed")
        XCTAssertEqual(try CorpusSource.directory(path: root, seed: 1).documents().skippedNonUTF8, ["pkg/latin.py"])
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

    private func corpusError(_ path: String) -> CorpusError? {
        do {
            _ = try DirectoryCorpus(root: path)
            return nil
        } catch let e as CorpusError {
            return e
        } catch {
            XCTFail("unexpected \(error)")
            return nil
        }
    }

    func testMissingPathsAndFilesAreNotDirectories() throws {
        XCTAssertEqual(corpusError(root + "/nope"), .notADirectory(root + "/nope"))
        XCTAssertEqual(corpusError(root + "/notes.txt"), .notADirectory(root + "/notes.txt"))
        XCTAssertTrue("\(CorpusError.notADirectory(root + "/nope"))".hasPrefix(root + "/nope: "))
    }

    func testEmptyDirectoryIsAnErrorNamingIt() throws {
        let empty = root + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: false)
        XCTAssertEqual(corpusError(empty), .emptyDirectory(empty))
        XCTAssertEqual("\(CorpusError.emptyDirectory(empty))", "\(empty): the corpus directory is empty")
    }

    func testDirectoryWithoutPythonFilesIsAnErrorNamingIt() throws {
        let docs = root + "/docs"
        try FileManager.default.createDirectory(atPath: docs + "/more", withIntermediateDirectories: true)
        try "a".write(toFile: docs + "/readme.txt", atomically: true, encoding: .utf8)
        try "b".write(toFile: docs + "/more/setup.cfg", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: docs + "/pkg.py", withIntermediateDirectories: false)
        XCTAssertEqual(corpusError(docs), .noPythonFiles(docs, otherFiles: 2), "a directory named .py is not a file")
        XCTAssertTrue("\(corpusError(docs)!)".hasPrefix("\(docs): no .py files"))
    }

    func testDirectoryOfOnlyNonUTF8FilesIsAnErrorNamingOne() throws {
        let legacy = root + "/legacy"
        try FileManager.default.createDirectory(atPath: legacy, withIntermediateDirectories: false)
        try Data([0x73, 0x20, 0x3D, 0x20, 0x27, 0xE9, 0x27, 0x0A]).write(to: URL(fileURLWithPath: legacy + "/latin1.py"))
        XCTAssertEqual(corpusError(legacy), .noUTF8PythonFiles(legacy, skipped: 1, example: legacy + "/latin1.py"))
    }

    func testUnreadableFileIsAnErrorNamingIt() throws {
        let link = root + "/pkg/broken.py"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: root + "/does-not-exist.py")
        XCTAssertEqual(corpusError(root), .unreadableFile(link, reason: "it is a broken symbolic link"))
        XCTAssertTrue("\(corpusError(root)!)".hasPrefix("\(link): cannot read this file of the corpus"))
        try FileManager.default.removeItem(atPath: link)

        // Permissions bind only a user other than root.
        guard getuid() != 0 else { return }
        let locked = root + "/pkg/locked.py"
        try "x = 1\n".write(toFile: locked, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: locked)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: locked) }
        XCTAssertEqual(corpusError(root), .unreadableFile(locked, reason: "permission denied"))
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
