import Foundation

/// One tensor of a safetensors file (F32 or I32, little-endian).
public struct SafeTensor: Sendable {
    public enum DType: String, Sendable { case f32 = "F32", i32 = "I32" }
    public var dtype: DType
    public var shape: [Int]
    public var bytes: [UInt8]

    public var count: Int { shape.reduce(1, *) }

    public init(floats: [Float], shape: [Int]) {
        dtype = .f32
        self.shape = shape
        bytes = floats.withUnsafeBufferPointer { buf in
            var out = [UInt8](repeating: 0, count: buf.count * 4)
            for (i, f) in buf.enumerated() {
                let b = f.bitPattern.littleEndian
                out[4 * i] = UInt8(truncatingIfNeeded: b); out[4 * i + 1] = UInt8(truncatingIfNeeded: b >> 8)
                out[4 * i + 2] = UInt8(truncatingIfNeeded: b >> 16); out[4 * i + 3] = UInt8(truncatingIfNeeded: b >> 24)
            }
            return out
        }
    }

    public init(ints: [Int32], shape: [Int]) {
        self.init(floats: ints.map { Float(bitPattern: UInt32(bitPattern: $0)) }, shape: shape)
        dtype = .i32
    }

    init(dtype: DType, shape: [Int], bytes: [UInt8]) {
        self.dtype = dtype; self.shape = shape; self.bytes = bytes
    }

    private func words() -> [UInt32] {
        (0..<count).map { i in
            UInt32(bytes[4 * i]) | UInt32(bytes[4 * i + 1]) << 8 | UInt32(bytes[4 * i + 2]) << 16 | UInt32(bytes[4 * i + 3]) << 24
        }
    }
    /// The values as floats (I32 tensors are converted).
    public var floats: [Float] { dtype == .f32 ? words().map { Float(bitPattern: $0) } : ints.map(Float.init) }
    /// The values as integers (F32 tensors are truncated).
    public var ints: [Int32] { dtype == .i32 ? words().map { Int32(bitPattern: $0) } : floats.map { Int32($0) } }
}

/// Minimal safetensors reader/writer: u64-LE header length, JSON header (dtype, shape, data_offsets,
/// optional `__metadata__` of strings) padded with spaces to 8 bytes, then the raw data.
public struct SafeTensorsFile: Sendable {
    public var tensors: [String: SafeTensor]
    public var metadata: [String: String]

    public init(tensors: [String: SafeTensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// Reads `path`; every structural problem is an error naming the file and what is wrong.
    public static func read(_ path: String) throws -> SafeTensorsFile {
        func fail(_ why: String) -> SparseGPTError { .checkpoint(file: path, problem: why) }
        guard let data = FileManager.default.contents(atPath: path) else { throw fail("cannot be read (missing or unreadable)") }
        let raw = [UInt8](data)
        guard raw.count >= 8 else { throw fail("too short for a safetensors header length (\(raw.count) bytes)") }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(raw[i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(raw.count - 8) else {
            throw fail("bad header length \(headerLength): the file has only \(raw.count - 8) bytes after it (truncated?)")
        }
        let headerBytes = Data(raw[8..<(8 + Int(headerLength))])
        guard let json = try? JSONSerialization.jsonObject(with: headerBytes), let header = json as? [String: Any] else {
            throw fail("header is not a JSON object")
        }
        let dataStart = 8 + Int(headerLength)
        let dataCount = raw.count - dataStart
        var result = SafeTensorsFile()
        for (name, value) in header {
            if name == "__metadata__" {
                guard let meta = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (k, v) in meta {
                    guard let s = v as? String else { throw fail("metadata value \(k) is not a string") }
                    result.metadata[k] = s
                }
                continue
            }
            guard let entry = value as? [String: Any] else { throw fail("tensor \(name): entry is not an object") }
            guard let dtypeName = entry["dtype"] as? String, let dtype = SafeTensor.DType(rawValue: dtypeName) else {
                throw fail("tensor \(name): unsupported or missing dtype \(entry["dtype"] ?? "nil") (F32 or I32 expected)")
            }
            guard let shape = entry["shape"] as? [Int], shape.allSatisfy({ $0 >= 0 }) else { throw fail("tensor \(name): bad shape") }
            guard let offsets = entry["data_offsets"] as? [Int], offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1] else {
                throw fail("tensor \(name): bad data_offsets")
            }
            guard offsets[1] <= dataCount else {
                throw fail("tensor \(name): data ends at byte \(offsets[1]) but the file holds \(dataCount) data bytes (truncated)")
            }
            let expected = shape.reduce(1, *) * 4
            guard offsets[1] - offsets[0] == expected else {
                throw fail("tensor \(name): \(offsets[1] - offsets[0]) data bytes for shape \(shape) (expected \(expected))")
            }
            result.tensors[name] = SafeTensor(dtype: dtype, shape: shape,
                                              bytes: Array(raw[(dataStart + offsets[0])..<(dataStart + offsets[1])]))
        }
        return result
    }

    /// The tensor `name`, or an error naming the file and the missing tensor.
    public func tensor(_ name: String, file: String, shape: [Int]? = nil) throws -> SafeTensor {
        guard let t = tensors[name] else { throw SparseGPTError.checkpoint(file: file, problem: "missing tensor \(name)") }
        if let shape, t.shape != shape {
            throw SparseGPTError.checkpoint(file: file, problem: "tensor \(name) has shape \(t.shape), expected \(shape)")
        }
        return t
    }

    /// Writes the file atomically (tensors in name order).
    public func write(_ path: String) throws {
        var header: [String: Any] = [:]
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let t = tensors[name]!
            header[name] = ["dtype": t.dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + t.bytes.count]]
            offset += t.bytes.count
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(json)
        for name in names { out.append(contentsOf: tensors[name]!.bytes) }
        do {
            try out.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw SparseGPTError.checkpoint(file: path, problem: "cannot be written: \(error.localizedDescription)")
        }
    }
}
