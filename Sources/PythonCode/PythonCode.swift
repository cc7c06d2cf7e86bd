// PythonCode: the data side of the method, a leaf library (Foundation only).
//
//   SyntheticPython(seed:stream:)     unbounded seeded stream of valid Python programs
//   DirectoryCorpus(root:seed:)       every .py file under a path, split train/held-out by path hash
//   BPETokenizer.train/encode/decode  byte-level BPE over PreTokenizer pieces; save/load as JSON
//   BPETokenizer.trainServingTasks    the sweep's tokenizer: every task candidate one whole token
//   CorpusSource.tokens(...)          flat [UInt16] train and held-out token streams for the trainer
//   PythonTask.all / makePairs(...)   the ten minimal-pair tasks as TaskPairs (opener_pairs layout)
//
// Typical wiring for a sweep:
//   let source = CorpusSource(argument: "synthetic", seed: 0)
//   let documents = try source.documents()
//   let tokenizer = try BPETokenizer.trainServingTasks(on: documents.trainingText(bytes: 2_000_000), vocabularySize: 512)
//   let tokens = documents.tokens(tokenizer: tokenizer, trainTokens: 4_000_000, heldOutTokens: 200_000)
//   let pairs = try PythonTask.named("bracket_counting").makePairs(tokenizer: tokenizer, seed: 0, maxLength: 64)
