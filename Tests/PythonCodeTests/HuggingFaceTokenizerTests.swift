import Foundation
import XCTest
@testable import PythonCode

final class HuggingFaceTokenizerTests: XCTestCase {
    private struct Encodings: Decodable {
        var texts: [String]
        var ids: [[Int]]
    }

    private func fixture(_ name: String) throws -> URL {
        try XCTUnwrap(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil))
    }

    /// The fixture's ids came from Python's `tokenizers` loading this exporter's tokenizer.json.
    func testCircuitryEncodesAsPythonTokenizersDoes() throws {
        let tokenizer = try BPETokenizer.load(from: fixture("circuitry-tokenizer.json").path)
        let encodings = try JSONDecoder().decode(Encodings.self, from: Data(contentsOf: fixture("huggingface-encodings.json")))
        XCTAssertEqual(encodings.texts.count, encodings.ids.count)
        XCTAssertGreaterThan(encodings.texts.count, 50)
        for (text, ids) in zip(encodings.texts, encodings.ids) {
            XCTAssertEqual(tokenizer.encode(text), ids, "text \(text.debugDescription)")
        }
    }

    func testDocumentDescribesTheVocabularyAndMerges() throws {
        let tokenizer = try BPETokenizer.load(from: fixture("circuitry-tokenizer.json").path)
        let data = try tokenizer.huggingFace().jsonData()
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let model = try XCTUnwrap(root["model"] as? [String: Any])
        let vocab = try XCTUnwrap(model["vocab"] as? [String: Int])
        let merges = try XCTUnwrap(model["merges"] as? [[String]])
        XCTAssertEqual(vocab.count, tokenizer.vocabularySize)
        XCTAssertEqual(merges.count, tokenizer.merges.count)
        XCTAssertEqual(vocab["Ġ"], 32, "the space byte's printable stand-in")
        XCTAssertEqual(vocab["a"], 97)
        for (r, pair) in merges.enumerated() {
            XCTAssertEqual(vocab[pair[0] + pair[1]], 256 + r)
            XCTAssertEqual(vocab[pair[0]], Int(tokenizer.merges[r].0))
            XCTAssertEqual(vocab[pair[1]], Int(tokenizer.merges[r].1))
        }
        XCTAssert(root.keys.contains("normalizer") && root["normalizer"] is NSNull)
    }

    func testByteCharactersAreDistinctAndPrintable() {
        let characters = HuggingFaceTokenizer.byteCharacters
        XCTAssertEqual(Set(characters).count, 256)
        XCTAssertEqual(characters[0x21], "!")
        XCTAssertEqual(characters[0x20], "Ġ")
        XCTAssertEqual(characters[0x0A], "Ċ")
        XCTAssertEqual(characters[0xFF], "ÿ")
    }

    func testTokensWithTheSameBytesAreRefused() {
        let bytes = (0..<256).map { [UInt8($0)] } + [[97, 97], [97, 97, 97], [97, 97, 97]]
        let merges: [HuggingFaceTokenizer.Merge] = [.init(left: 97, right: 97, result: 256),
                                                    .init(left: 256, right: 97, result: 257),
                                                    .init(left: 97, right: 256, result: 258)]
        XCTAssertThrowsError(try HuggingFaceTokenizer(tokenBytes: bytes, merges: merges)) { error in
            XCTAssert("\(error)".contains("tokens 257 and 258"), "\(error)")
        }
        XCTAssertThrowsError(try HuggingFaceTokenizer(tokenBytes: bytes, merges: [.init(left: 97, right: 98, result: 256)]))
    }
}
