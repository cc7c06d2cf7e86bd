/// A weight matrix (rows x cols, row-major) in compressed form, both by rows (CSR) and by columns
/// (CSC), for products that skip zero weights and zero activations. Rebuilt at a forward whenever the
/// dense weights differ (bitwise) from those it was built from, so it always matches them.
final class SparseMatrix {
    let rows: Int
    let cols: Int
    private(set) var nonzero = 0
    let rowStart: UnsafeMutablePointer<Int32>
    let rowIndex: UnsafeMutablePointer<Int32>
    let rowValue: UnsafeMutablePointer<Float>
    let colStart: UnsafeMutablePointer<Int32>
    let colIndex: UnsafeMutablePointer<Int32>
    let colValue: UnsafeMutablePointer<Float>

    init(rows: Int, cols: Int) {
        self.rows = rows
        self.cols = cols
        let capacity = rows * cols
        rowStart = .allocate(capacity: rows + 1); rowIndex = .allocate(capacity: capacity); rowValue = .allocate(capacity: capacity)
        colStart = .allocate(capacity: cols + 1); colIndex = .allocate(capacity: capacity); colValue = .allocate(capacity: capacity)
    }

    deinit {
        rowStart.deallocate(); rowIndex.deallocate(); rowValue.deallocate()
        colStart.deallocate(); colIndex.deallocate(); colValue.deallocate()
    }

    /// Number of nonzeros of the dense `w`.
    static func countNonzero(_ w: UnsafePointer<Float>, _ count: Int) -> Int {
        var n = 0
        for i in 0..<count { n &+= w[i] != 0 ? 1 : 0 }
        return n
    }

    func rebuild(from w: UnsafePointer<Float>) {
        var n = 0
        for c in 0...cols { colStart[c] = 0 }
        for r in 0..<rows {
            rowStart[r] = Int32(n)
            let wr = w + r * cols
            for c in 0..<cols where wr[c] != 0 {
                rowIndex[n] = Int32(c)
                rowValue[n] = wr[c]
                colStart[c + 1] += 1
                n += 1
            }
        }
        rowStart[rows] = Int32(n)
        nonzero = n
        for c in 0..<cols { colStart[c + 1] += colStart[c] }
        // fill by rows, so each column's entries are in increasing row order
        let next = UnsafeMutablePointer<Int32>.allocate(capacity: cols)
        defer { next.deallocate() }
        next.update(from: colStart, count: cols)
        for r in 0..<rows {
            for e in Int(rowStart[r])..<Int(rowStart[r + 1]) {
                let c = Int(rowIndex[e])
                let slot = Int(next[c])
                colIndex[slot] = Int32(r)
                colValue[slot] = rowValue[e]
                next[c] += 1
            }
        }
    }
}

/// out[n, :outWidth] = sum over nonzero input[n, j] of input[n, j] * (row j of a compressed matrix):
/// with the CSC of W (j = input feature) it is input @ W^T; with the CSR of W (j = output feature)
/// it is dOut @ W. Skips zero activations and zero weights. `indices` holds threads * inWidth Int32.
func sparseProduct(_ out: FloatPointer, outWidth: Int, _ input: UnsafePointer<Float>, inWidth: Int, rows: Int,
                   start: UnsafePointer<Int32>, index: UnsafePointer<Int32>, value: UnsafePointer<Float>,
                   indices: UnsafeMutablePointer<Int32>, threads: Int) {
    let parts = fixedChunks(rows, minimumSize: 8)
    parallelForWorkers(parts, threads: threads) { part, worker in
        let active = indices + worker * inWidth
        for n in chunkRange(rows, parts: parts, part) {
            let o = out + n * outWidth, x = input + n * inWidth
            o.update(repeating: 0, count: outWidth)
            var m = 0
            for j in 0..<inWidth {            // branch-free list of the nonzero inputs
                active[m] = Int32(j)
                let magnitude = x[j].bitPattern &<< 1     // 0 exactly for +0 and -0
                m &+= Int((magnitude | (0 &- magnitude)) >> 31)
            }
            for a in 0..<m {
                let j = Int(active[a])
                let xj = x[j]
                for e in Int(start[j])..<Int(start[j + 1]) {
                    o[Int(index[e])] += xj * value[e]
                }
            }
        }
    }
}

/// Rows per tile of `tiledSparseProduct`: four 8-lane accumulators hold one output feature of a tile.
let sparseProductTile = 32

/// `sparseProduct` for whole tiles of 32 rows, on 8 lanes across each tile's rows. The tile's inputs
/// are transposed (feature-major), then each output feature f sums value[e] * input[., index[e]]
/// over f's compressed entries in their stored (increasing) order: the order in which
/// `sparseProduct` adds the same nonzero terms, while the zero terms it skips add +0 to a sum that
/// cannot be -0, so the two give the same bits. It does 1/afrac times the multiply-adds, but in
/// lanes and without scattered read-modify-writes. `start`, `index`, `value` are the compressed form
/// by output feature (the CSR of W for input @ W^T, the CSC for input @ W); `scratch` holds
/// threads * inWidth * 32 floats. Writes the first `tiles` * 32 rows of `out`.
func tiledSparseProduct(_ out: FloatPointer, outWidth: Int, _ input: UnsafePointer<Float>, inWidth: Int, tiles: Int,
                        start: UnsafePointer<Int32>, index: UnsafePointer<Int32>, value: UnsafePointer<Float>,
                        scratch: FloatPointer, threads: Int) {
    let tile = sparseProductTile
    parallelForWorkers(tiles, threads: threads) { t, worker in
        let transposed = scratch + worker * inWidth * tile
        let first = t * tile
        for r in 0..<tile {
            let x = input + (first + r) * inWidth
            for j in 0..<inWidth { transposed[j * tile + r] = x[j] }
        }
        let o = out + first * outWidth
        for f in 0..<outWidth {
            var a0 = Lanes(repeating: 0), a1 = a0, a2 = a0, a3 = a0
            for e in Int(start[f])..<Int(start[f + 1]) {
                let w = Lanes(repeating: value[e])
                let x = transposed + Int(index[e]) * tile
                a0 = a0 + loadLanes(x) * w
                a1 = a1 + loadLanes(x + 8) * w
                a2 = a2 + loadLanes(x + 16) * w
                a3 = a3 + loadLanes(x + 24) * w
            }
            for r in 0..<8 {
                o[r * outWidth + f] = a0[r]
                o[(r + 8) * outWidth + f] = a1[r]
                o[(r + 16) * outWidth + f] = a2[r]
                o[(r + 24) * outWidth + f] = a3[r]
            }
        }
    }
}

extension SparseMatrix {
    /// out (rows x self.rows) = input (rows x self.cols) @ W^T: whole tiles of rows on lanes, the rest
    /// row by row; both give the same bits.
    func productWithTranspose(_ out: FloatPointer, _ input: UnsafePointer<Float>, rows: Int, scratch: FloatPointer,
                              indices: UnsafeMutablePointer<Int32>, threads: Int) {
        tiledThenRows(out, outWidth: self.rows, input, inWidth: cols, rows: rows, byOutput: (rowStart, rowIndex, rowValue),
                      byInput: (colStart, colIndex, colValue), scratch: scratch, indices: indices, threads: threads)
    }

    /// out (rows x self.cols) = input (rows x self.rows) @ W, as `productWithTranspose`.
    func product(_ out: FloatPointer, _ input: UnsafePointer<Float>, rows: Int, scratch: FloatPointer,
                 indices: UnsafeMutablePointer<Int32>, threads: Int) {
        tiledThenRows(out, outWidth: cols, input, inWidth: self.rows, rows: rows, byOutput: (colStart, colIndex, colValue),
                      byInput: (rowStart, rowIndex, rowValue), scratch: scratch, indices: indices, threads: threads)
    }

    private typealias Compressed = (start: UnsafeMutablePointer<Int32>, index: UnsafeMutablePointer<Int32>, value: UnsafeMutablePointer<Float>)

    private func tiledThenRows(_ out: FloatPointer, outWidth: Int, _ input: UnsafePointer<Float>, inWidth: Int, rows: Int,
                               byOutput: Compressed, byInput: Compressed, scratch: FloatPointer,
                               indices: UnsafeMutablePointer<Int32>, threads: Int) {
        let tiles = rows / sparseProductTile, done = tiles * sparseProductTile
        tiledSparseProduct(out, outWidth: outWidth, input, inWidth: inWidth, tiles: tiles, start: byOutput.start,
                           index: byOutput.index, value: byOutput.value, scratch: scratch, threads: threads)
        guard done < rows else { return }
        sparseProduct(out + done * outWidth, outWidth: outWidth, input + done * inWidth, inWidth: inWidth, rows: rows - done,
                      start: byInput.start, index: byInput.index, value: byInput.value, indices: indices, threads: threads)
    }
}
