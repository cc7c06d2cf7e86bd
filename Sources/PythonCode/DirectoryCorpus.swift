import Foundation

/// A directory that cannot serve as a corpus, naming the path at fault.
public enum CorpusError: Error, CustomStringConvertible, Equatable {
    case notADirectory(String)
    case unreadableDirectory(String, reason: String)
    case unreadableFile(String, reason: String)
    case emptyDirectory(String)
    case noPythonFiles(String, otherFiles: Int)
    case noUTF8PythonFiles(String, skipped: Int, example: String)
    case emptySplit(String, split: String)
    case tooFewTokens(String, train: Int, heldOut: Int, window: Int)

    public var description: String {
        switch self {
        case .notADirectory(let p): return "\(p): not a directory (a corpus is \"synthetic\" or a directory of .py files)"
        case .unreadableDirectory(let p, let reason): return "\(p): cannot list this directory of the corpus: \(reason)"
        case .unreadableFile(let p, let reason):
            return "\(p): cannot read this file of the corpus: \(reason); make it readable or remove it from the directory"
        case .emptyDirectory(let p): return "\(p): the corpus directory is empty"
        case .noPythonFiles(let p, let others):
            return "\(p): no .py files in the corpus directory or below it (\(others) other files)"
        case .noUTF8PythonFiles(let p, let skipped, let example):
            return "\(p): none of its \(skipped) .py files is UTF-8 (for example \(example)); the corpus reads UTF-8 only"
        case .emptySplit(let p, let split):
            return "\(p): the \(split) split is empty; the directory has too few .py files"
        case .tooFewTokens(let p, let train, let heldOut, let window):
            return "\(p): the corpus gave \(train) train and \(heldOut) held-out tokens, less than one window of \(window)"
        }
    }
}

/// Every `.py` file under a directory, recursively, split into train and held-out files by a
/// stable hash of the path relative to the root.
///
/// A file that cannot be read is an error naming it: leaving it out would make the corpus depend
/// on the reader's permissions. A file that is not UTF-8 is skipped and counted (its path listed
/// in `nonUTF8Paths`): real trees hold a few deliberately legacy-encoded files (the standard
/// library's encoding tests), and the tokenizer reads UTF-8 only. File order is deterministic:
/// sorted by relative path, then shuffled by `seed`. Symbolic links to directories are not
/// followed.
public struct DirectoryCorpus {
    public struct File: Equatable {
        /// Path relative to the corpus root, with `/` separators.
        public let relativePath: String
        public let text: String
    }

    public let root: String
    public let train: [File]
    public let heldOut: [File]
    /// Relative paths of the `.py` files skipped because they are not UTF-8, sorted.
    public let nonUTF8Paths: [String]

    public var nonUTF8Count: Int { nonUTF8Paths.count }

    /// `heldOutPercent` of files (by path hash, not by seed) go to the held-out split, so the
    /// split is the same for every seed and every machine.
    public init(root: String, seed: UInt64 = 0, heldOutPercent: Int = 5) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CorpusError.notADirectory(root)
        }
        let base = URL(fileURLWithPath: root)
        let (paths, others) = try Self.pythonFiles(under: base, root: root)
        if paths.isEmpty { throw others == 0 ? CorpusError.emptyDirectory(root) : CorpusError.noPythonFiles(root, otherFiles: others) }
        var train: [File] = []
        var heldOut: [File] = []
        var nonUTF8: [String] = []
        for relative in paths {
            let url = base.appendingPathComponent(relative)
            let data: Data
            do {
                data = try Data(contentsOf: url)
            } catch {
                let reason = !FileManager.default.fileExists(atPath: url.path) ? "it is a broken symbolic link"
                    : !FileManager.default.isReadableFile(atPath: url.path) ? "permission denied" : error.localizedDescription
                throw CorpusError.unreadableFile(url.path, reason: reason)
            }
            guard let text = String(validatingUTF8Data: data) else {
                nonUTF8.append(relative)
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
            throw CorpusError.noUTF8PythonFiles(root, skipped: nonUTF8.count, example: base.appendingPathComponent(nonUTF8[0]).path)
        }
        var rng = SeededGenerator(seed: seed, stream: 0x0F11E5)
        rng.shuffle(&train)
        rng.shuffle(&heldOut)
        self.root = root
        self.train = train
        self.heldOut = heldOut
        self.nonUTF8Paths = nonUTF8
    }

    /// Relative paths of the `.py` files (not directories) under `base`, sorted, and the number of
    /// other entries; a subdirectory that cannot be listed is an error naming it.
    private static func pythonFiles(under base: URL, root: String) throws -> (paths: [String], others: Int) {
        var listingError: (String, String)?
        guard let enumerator = FileManager.default.enumerator(
            at: base, includingPropertiesForKeys: [.isDirectoryKey], options: [],
            errorHandler: { url, error in
                listingError = (url.path, error.localizedDescription)
                return false
            }) else {
            throw CorpusError.unreadableDirectory(root, reason: "it cannot be listed")
        }
        let prefix = base.standardizedFileURL.path.count + 1
        var paths: [String] = []
        var others = 0
        while let url = enumerator.nextObject() as? URL {
            let isDirectory = (try? url.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) ?? false
            if isDirectory {
                if !FileManager.default.isReadableFile(atPath: url.path) {
                    throw CorpusError.unreadableDirectory(url.path, reason: "permission denied")
                }
                continue
            }
            let relative = String(url.standardizedFileURL.path.dropFirst(prefix))
            if relative.hasSuffix(".py") { paths.append(relative) } else { others += 1 }
        }
        if let (path, reason) = listingError { throw CorpusError.unreadableDirectory(path, reason: reason) }
        return (paths.sorted(), others)
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
