import Foundation

/// Files named by the SHA-256 of their content, with an `incoming/` directory for files on
/// their way in. Used for the worker's cache and the coordinator's artifacts. A file enters
/// only whole and checked: its hash is computed, then it is renamed into place, so a reader
/// never sees a partial file and processes sharing the directory never clash.
struct ArtifactStore {
    let directory: URL
    var incoming: URL { directory.appendingPathComponent("incoming") }

    init(directory: URL) throws {
        self.directory = directory
        do {
            try FileManager.default.createDirectory(at: incoming, withIntermediateDirectories: true)
        } catch {
            throw fileError("cannot create the artifact directory", incoming, error)
        }
    }

    func url(_ hash: String) -> URL { directory.appendingPathComponent(hash) }
    func contains(_ hash: String) -> Bool { FileManager.default.fileExists(atPath: url(hash).path) }

    /// A fresh partial file for an artifact arriving in pieces; `tag` keeps writers apart.
    func partialFile(for hash: String, tag: String) throws -> URL {
        let partial = incoming.appendingPathComponent("\(hash).\(tag)")
        try? FileManager.default.removeItem(at: partial)
        guard FileManager.default.createFile(atPath: partial.path, contents: nil) else {
            throw errnoError("cannot create", partial)
        }
        return partial
    }

    /// Appends to a partial file. The file is opened per piece: an upload that never
    /// finishes holds no descriptor.
    func append(_ data: Data, to partial: URL) throws {
        let descriptor = open(partial.path, O_WRONLY | O_APPEND)
        guard descriptor >= 0 else { throw errnoError("cannot open", partial) }
        defer { close(descriptor) }
        try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < bytes.count {
                let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw errnoError("cannot write", partial)
                }
                offset += written
            }
        }
    }

    /// Moves a complete partial file into place if it hashes to `hash`; a file that does not is deleted.
    /// Returns the hash it has. `whileHashing` runs after every MiB hashed.
    func commit(_ partial: URL, as hash: String, whileHashing: () -> Void = {}) throws -> String {
        let actual = try SHA256.hex(fileAt: partial, afterEachPiece: whileHashing)
        guard actual == hash else {
            try? FileManager.default.removeItem(at: partial)
            return actual
        }
        guard rename(partial.path, url(hash).path) == 0 else { throw errnoError("cannot move into place", partial) }
        return actual
    }

    /// Moves a finished file (a shard's output) in under its hash and returns the hash.
    /// `whileHashing` runs after every MiB hashed.
    func adopt(_ file: URL, whileHashing: () -> Void = {}) throws -> String {
        let hash = try SHA256.hex(fileAt: file, afterEachPiece: whileHashing)
        if rename(file.path, url(hash).path) != 0 {
            guard errno == EXDEV else { throw errnoError("cannot move into the artifact store", file) }
            // Another file system: copy next to the store, then rename.
            let staging = try partialFile(for: hash, tag: "\(getpid())")
            do {
                try? FileManager.default.removeItem(at: staging)
                try FileManager.default.copyItem(at: file, to: staging)
            } catch {
                throw fileError("cannot copy into the artifact store", staging, error)
            }
            guard rename(staging.path, url(hash).path) == 0 else { throw errnoError("cannot move into place", staging) }
            try? FileManager.default.removeItem(at: file)
        }
        return hash
    }

    /// Deletes partial files last written before `cutoff` (left by processes that died).
    func removeStalePartials(olderThan cutoff: Date) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: incoming.path) else { return }
        for name in names {
            let file = incoming.appendingPathComponent(name)
            let modified = (try? FileManager.default.attributesOfItem(atPath: file.path))?[.modificationDate] as? Date
            if let modified, modified < cutoff { try? FileManager.default.removeItem(at: file) }
        }
    }
}
