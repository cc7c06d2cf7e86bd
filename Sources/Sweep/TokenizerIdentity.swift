import Circuits
import Foundation
import PythonCode
import SparseGPT

extension BPETokenizer {
    /// The SHA-256 of the tokenizer's JSON: what a checkpoint records of the tokenizer it was trained on.
    public var sha256: String { SHA256.hex(jsonData()) }
}

public enum TokenizerIdentity {
    /// Refuses a tokenizer other than the one the checkpoint was trained on: the model's ids mean
    /// nothing in another vocabulary, though every loss would still come out as a number. A
    /// checkpoint that records no tokenizer (trained on token files or random tokens) is not checked.
    public static func check(_ tokenizer: BPETokenizer, file tokenizerFile: String,
                             against checkpoint: Checkpoint, file checkpointFile: String) throws {
        guard let recorded = checkpoint.tokenizerHash else { return }
        let given = tokenizer.sha256
        guard given == recorded else {
            throw SweepError("""
                \(tokenizerFile) is not the tokenizer \(checkpointFile) was trained on: \
                the checkpoint records tokenizer sha256 \(recorded), \(tokenizerFile) has sha256 \(given)
                """)
        }
    }

    /// Refuses a pairs file whose ids come from another tokenizer than the checkpoint's. Either
    /// side recording no tokenizer is not checked.
    public static func check(pairsFile: String, against checkpoint: Checkpoint, file checkpointFile: String) throws {
        guard let recorded = checkpoint.tokenizerHash,
              let given = try TaskPairsFile.loadWithTokenizer(URL(fileURLWithPath: pairsFile)).tokenizerHash else { return }
        guard given == recorded else {
            throw SweepError("""
                \(pairsFile) was made with another tokenizer than \(checkpointFile) was trained on: \
                the checkpoint records tokenizer sha256 \(recorded), the pairs file \(given)
                """)
        }
    }
}
