import Foundation

public enum CorpusError: Error, CustomStringConvertible {
    case notADirectory(String)
    case noPythonFiles(String, skipped: Int)
    case emptySplit(String, split: String)

    public var description: String {
        switch self {
        case .notADirectory(let p): return "\(p): not a readable directory"
        case .noPythonFiles(let p, let skipped):
            return "\(p): no readable UTF-8 .py files found (\(skipped) skipped)"
        case .emptySplit(let p, let split):
            return "\(p): the \(split) split is empty; the directory has too few .py files"
        }
    }
}

/// Every `.py` file under a directory, recursively, split into train and held-out files by a
/// stable hash of the path relative to the root.
///
/// Unreadable and non-UTF-8 files are skipped and counted. File order is deterministic: sorted by
/// relative path, then shuffled by `seed`. Symbolic links to directories are not followed.
public struct DirectoryCorpus {
    public struct File: Equatable {
        /// Path relative to the corpus root, with `/` separators.
        public let relativePath: String
        public let text: String
    }

    public let root: String
    public let train: [File]
    public let heldOut: [File]
    public let unreadableCount: Int
    public let nonUTF8Count: Int

    /// `heldOutPercent` of files (by path hash, not by seed) go to the held-out split, so the
    /// split is the same for every seed and every machine.
    public init(root: String, seed: UInt64 = 0, heldOutPercent: Int = 5) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue,
              let enumerator = FileManager.default.enumerator(atPath: root) else {
            throw CorpusError.notADirectory(root)
        }
        var paths: [String] = []
        while let relative = enumerator.nextObject() as? String {
            if relative.hasSuffix(".py") { paths.append(relative) }
        }
        paths.sort()
        let base = URL(fileURLWithPath: root)
        var train: [File] = []
        var heldOut: [File] = []
        var unreadable = 0
        var nonUTF8 = 0
        for relative in paths {
            let url = base.appendingPathComponent(relative)
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue { continue }
            guard let data = try? Data(contentsOf: url) else {
                unreadable += 1
                continue
            }
            guard let text = String(validatingUTF8Data: data) else {
                nonUTF8 += 1
                continue
            }
            let file = File(relativePath: relative, text: text)
            if DirectoryCorpus.isHeldOut(relative, percent: heldOutPercent) {
                heldOut.append(file)
            } else {
                train.append(file)
            }
        }
        guard !(train.isEmpty && heldOut.isEmpty) else {
            throw CorpusError.noPythonFiles(root, skipped: unreadable + nonUTF8)
        }
        var rng = SeededGenerator(seed: seed, stream: 0x0F11E5)
        rng.shuffle(&train)
        rng.shuffle(&heldOut)
        self.root = root
        self.train = train
        self.heldOut = heldOut
        self.unreadableCount = unreadable
        self.nonUTF8Count = nonUTF8
    }

    public static func isHeldOut(_ relativePath: String, percent: Int) -> Bool {
        stableHash(relativePath.utf8) % 100 < UInt64(max(0, min(100, percent)))
    }
}

extension String {
    /// The text of `data` if it is valid UTF-8, else nil (no replacement characters).
    init?(validatingUTF8Data data: Data) {
        var valid = true
        let s = data.withUnsafeBytes { raw -> String in
            let bytes = raw.bindMemory(to: UInt8.self)
            var it = bytes.makeIterator()
            var decoder = UTF8()
            loop: while true {
                switch decoder.decode(&it) {
                case .scalarValue: continue
                case .emptyInput: break loop
                case .error:
                    valid = false
                    break loop
                }
            }
            return valid ? String(decoding: bytes, as: UTF8.self) : ""
        }
        guard valid else { return nil }
        self = s
    }
}
