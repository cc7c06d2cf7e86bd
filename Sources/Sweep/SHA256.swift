import Crypto
import Foundation

/// SHA-256 by swift-crypto, under the names the sweep uses: artifacts are addressed by the hash
/// of their content.
public struct SHA256 {
    private var hasher = Crypto.SHA256()

    public init() {}

    public mutating func update(_ data: Data) { hasher.update(data: data) }

    public mutating func update(_ bytes: [UInt8]) { hasher.update(data: bytes) }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }

    /// The digest of everything so far; the hasher starts over.
    public mutating func finalize() -> [UInt8] {
        defer { hasher = Crypto.SHA256() }
        return Array(hasher.finalize())
    }

    public static func hex(_ data: Data) -> String {
        hexString(Array(Crypto.SHA256.hash(data: data)))
    }

    /// The hex digest of a file, read in 1 MiB pieces; `afterEachPiece` runs between them.
    public static func hex(fileAt url: URL, afterEachPiece: () -> Void = {}) throws -> String {
        do {
            let handle = try FileHandle(forReadingFrom: url)
            defer { try? handle.close() }
            var hasher = SHA256()
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                hasher.update(chunk)
                afterEachPiece()
            }
            return hexString(hasher.finalize())
        } catch {
            throw fileError("cannot read", url, error)
        }
    }

    public static func hexString(_ digest: [UInt8]) -> String {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}
