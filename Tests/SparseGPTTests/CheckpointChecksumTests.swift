import Foundation
import XCTest
@testable import SparseGPT

final class CheckpointChecksumTests: XCTestCase {
    func testAFlippedBitInTheTensorDataIsAnErrorNamingTheFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("checksum-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = ModelConfig(vocab: 29, context: 8, dModel: 32, nLayer: 1, afrac: 0.5)
        let training = TrainingConfig(density: 0.5, steps: 6, batch: 3, seed: 11)
        let trainer = try Trainer(model: GPT(config: model, seed: training.seed), config: training)
        let path = directory.appendingPathComponent("model.safetensors").path
        try Checkpoint(trainer: trainer).save(to: path)
        XCTAssertNoThrow(try Checkpoint.load(from: path))

        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var headerLength = 0
        for i in 0..<8 { headerLength |= Int(bytes[i]) << (8 * i) }
        let dataStart = 8 + headerLength
        // One bit of every region of the data, each on its own: weights and moments alike.
        for position in stride(from: dataStart, to: bytes.count, by: (bytes.count - dataStart) / 7) {
            bytes[position] ^= 0x10
            let flipped = directory.appendingPathComponent("flipped.safetensors").path
            try Data(bytes).write(to: URL(fileURLWithPath: flipped))
            bytes[position] ^= 0x10
            XCTAssertThrowsError(try Checkpoint.load(from: flipped), "bit at byte \(position)") { error in
                XCTAssertTrue("\(error)".contains(flipped), "\(error)")
                XCTAssertTrue("\(error)".contains("does not match its checksum"), "\(error)")
            }
        }
    }
}
