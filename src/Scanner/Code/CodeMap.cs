using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using DriverAudit.Scanner.Pe;
using Iced.Intel;

namespace DriverAudit.Scanner.Code;

/// <summary>
/// What the functions of an image contain, from one function-bounded disassembly pass shared by every code
/// fact (instructions, data references; call sites ask it which function they are in). Functions come from:
/// x64 <c>.pdata</c> ranges (chained unwind info followed to the primary function), then recursive descent
/// from the entry point, the exports, direct call targets and code addresses the decoded code takes (a
/// dispatch routine stored into the DRIVER_OBJECT). Data directories (import descriptors, IAT, exception,
/// load config, debug, relocations, resources) and jump tables recognised during descent are never decoded.
/// When descent finds no function at all (no usable entry point, exports or .pdata), a linear sweep of the executable bytes outside
/// the data directories is the fallback, and its instructions have no function (<see cref="Fallback"/>).
/// Built once per image, on first need; the per-byte state used while building is dropped afterwards.
/// </summary>
internal sealed class CodeMap
{
    private const int MaxJumpTableEntries = 1024;

    private readonly (uint Start, uint End, uint Function)[] _blocks;

    private CodeMap((uint, uint, uint)[] blocks, List<InstructionHit> hits, RvaSet references, int functions, long decoded, bool fallback)
    {
        _blocks = blocks;
        Hits = hits;
        References = references;
        FunctionCount = functions;
        InstructionsDecoded = decoded;
        Fallback = fallback;
    }

    /// <summary>Privileged instructions in address order, each with its function (null only from the fallback sweep).</summary>
    public IReadOnlyList<InstructionHit> Hits { get; }

    /// <summary>RVAs the decoded code addresses: rip-relative operands (x64), absolute operands and immediates (x86).</summary>
    public IReadOnlySet<uint> References { get; }

    public int FunctionCount { get; }
    public long InstructionsDecoded { get; }

    /// <summary>True when descent found no function and the executable bytes were swept linearly instead.</summary>
    public bool Fallback { get; }

    /// <summary>Start of the function whose decoded code contains <paramref name="rva"/>, or null.</summary>
    public uint? FunctionOf(uint rva)
    {
        int lo = 0, hi = _blocks.Length - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_blocks[mid].Start <= rva) lo = mid + 1; else hi = mid - 1;
        }
        return hi >= 0 && rva < _blocks[hi].End ? _blocks[hi].Function : null;
    }

    public static CodeMap Build(CodeImage code, PeImage image) => new Builder(code, image).Run();

    /// <summary>
    /// The hits of the <paramref name="needles"/>' kinds (wrmsr, rdmsr, mov crN) that <see cref="Build"/> would report,
    /// with the same functions, found by decoding only the x64 .pdata functions around each 0F xx candidate; null when
    /// that cannot be proven, and then only the whole map answers. The proof: .pdata ranges are decoded first, each on
    /// its own (<see cref="Builder"/>.Linear); when no two ranges overlap, a range's decode depends only on its own bytes
    /// and the data directories, and every byte it covers is then decoded for good (no later pass starts an instruction
    /// inside it). An instruction with its opcode at p starts at p or after a run of prefix bytes before it (at most 14);
    /// when every such start is covered by its range's decode, the hits there are exactly the map's. Otherwise (no .pdata, x86, overlapping ranges,
    /// a candidate in a gap or past an invalid instruction) the answer is null.
    /// </summary>
    /// <param name="decoded">Instructions decoded to find out, whatever the answer.</param>
    public static List<InstructionHit>? HitsAround(CodeImage code, PeImage image, OpcodeNeedles needles, out long decoded)
    {
        decoded = 0;
        if (code.Functions.Count == 0) return null;
        var builder = new Builder(code, image);
        var hits = builder.Around(needles);
        decoded = builder.Decoded;
        CodeStats.AddInstructions(decoded);
        return hits;
    }

    private sealed class Builder
    {
        // Per code byte: what decoding made of it.
        private const byte Unknown = 0, Start = 1, Inside = 2, Data = 3;

        // What descent asks of every instruction, per Iced Code (each a function of the Code alone): how control
        // flows on, the operand count, whether it may be a privileged instruction, lea / push / mov. Learnt the first
        // time a Code is decoded (0 = not yet; racing threads write the same value), so one load from this small
        // table replaces Iced's flow-control, operand-count and mnemonic tables, which miss the cache.
        private static readonly ushort[] CodeTraits = new ushort[InstructionScanner.CodeCount];
        private const int FlowMask = 7, FlowNext = 0, FlowCall = 1, FlowConditional = 2, FlowUnconditional = 3, FlowIndirect = 4, FlowStop = 5;
        private const int OpCountShift = 3, Privileged = 1 << 6, IsLea = 1 << 7, IsPushOrMov = 1 << 8, Learnt = 1 << 15;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static int Traits(in Instruction i)
        {
            int t = CodeTraits[(int)i.Code];
            return t != 0 ? t : Learn(i);
        }

        private static int Learn(in Instruction i)
        {
            var flow = i.FlowControl switch
            {
                FlowControl.Call => FlowCall,
                FlowControl.ConditionalBranch => FlowConditional,
                FlowControl.UnconditionalBranch => FlowUnconditional,
                FlowControl.IndirectBranch => FlowIndirect,
                FlowControl.Return or FlowControl.Interrupt or FlowControl.Exception => FlowStop,
                _ => FlowNext, // next, indirect call, xbegin/xabort/xend: the function goes on
            };
            var t = Learnt | flow | i.OpCount << OpCountShift
                | (InstructionScanner.MayClassify(i.Code) ? Privileged : 0)
                | (i.Mnemonic == Mnemonic.Lea ? IsLea : 0)
                | (i.Mnemonic is Mnemonic.Push or Mnemonic.Mov ? IsPushOrMov : 0);
            CodeTraits[(int)i.Code] = (ushort)t;
            return t;
        }

        private readonly CodeImage _code;
        private readonly PeImage _image;
        private readonly CodeSection[] _sections;
        private readonly bool _is64;
        private readonly uint _sizeOfImage;
        private readonly ulong _addressBase;
        // One byte per code byte. Not pooled: the pool would keep the largest image's arrays alive (peak memory).
        private readonly byte[][] _state;
        // One bit per code byte: a function starts there (a .pdata primary, an entry, an export, an enqueued seed).
        private readonly ulong[][] _startBits;
        // Function starts outside every code section (.pdata primaries only): asked about, never decoded.
        private readonly HashSet<uint> _outsideStarts = [];
        private readonly List<(uint Start, uint End, uint Function)> _blocks = [];
        private readonly List<InstructionHit> _hits = [];
        // A set, not a list of every use: large images repeat the same few thousand addresses millions of times.
        private readonly RvaSet _references;
        // Whether two code sections overlap (CodeImage's distinct spans never do): only then may the section found
        // last not be the first one containing an address.
        private readonly bool _overlapping;
        private int _lastSection;
        private readonly Queue<(uint Rva, bool Strong)> _queue = new();
        private readonly Stack<uint> _work = new();
        private readonly SectionReader _reader = new();
        private readonly Decoder _decoder;
        private readonly long _budget;
        private readonly Instruction[] _recent = new Instruction[8];
        private long _decoded;
        private int _functions;

        public Builder(CodeImage code, PeImage image)
        {
            _code = code;
            _image = image;
            _sections = [.. code.Sections];
            _is64 = code.Is64;
            _sizeOfImage = image.SizeOfImage;
            _addressBase = code.AddressBase;
            _references = new RvaSet(_sizeOfImage);
            _state = new byte[_sections.Length][];
            _startBits = new ulong[_sections.Length][];
            long total = 0;
            for (var s = 0; s < _state.Length; s++)
            {
                _state[s] = new byte[_sections[s].Bytes.Length];
                _startBits[s] = new ulong[(_state[s].Length + 63) >> 6];
                total += _state[s].Length;
                for (var t = 0; t < s; t++)
                    if (_sections[t].Rva < _sections[s].EndRva && _sections[s].Rva < _sections[t].EndRva) _overlapping = true;
            }
            // Each byte starts at most one decoded instruction, whatever the descent does.
            _budget = total + 16;
            _decoder = Decoder.Create(code.Bitness, _reader, DecoderOptions.None);
            MarkDirectories();
        }

        public long Decoded => _decoded;

        /// <summary>See <see cref="HitsAround"/>.</summary>
        public List<InstructionHit>? Around(OpcodeNeedles needles)
        {
            var ranges = _code.Functions.Entries;
            for (var k = 0; k + 1 < ranges.Count; k++)
                if (ranges[k].End > ranges[k + 1].Begin) return null;
            var decoded = new HashSet<int>(); // ranges decoded so far
            foreach (var needle in (ReadOnlySpan<OpcodeNeedles>)[OpcodeNeedles.Wrmsr, OpcodeNeedles.Rdmsr, OpcodeNeedles.MovToCr])
            {
                if ((needles & needle) == 0) continue;
                ReadOnlySpan<byte> pair = [0x0F, InstructionScanner.SecondByte(needle)];
                for (var s = 0; s < _state.Length; s++)
                {
                    var sec = _sections[s];
                    var state = _state[s];
                    var bytes = sec.Bytes.AsSpan();
                    for (var at = 0; at < bytes.Length;)
                    {
                        var found = bytes[at..].IndexOf(pair);
                        if (found < 0) break;
                        var p = at + found;
                        at = p + 1;
                        // Every start an instruction with its opcode at p can have (p itself, or up to 14 prefix bytes
                        // before it: the decoder reads only prefixes before a legacy opcode) must be settled: a directory
                        // byte (never decoded), or a byte its range's decode covered (then it starts an instruction of
                        // that decode, whose hit is known, or lies inside one). A byte the decode left unknown could
                        // still be reached by descent: not provable here.
                        var first = p;
                        while (first > 0 && p - first < 14 && IsPrefix(bytes[first - 1])) first--;
                        for (var start = first; start <= p; start++)
                        {
                            if (state[start] == Data) continue;
                            var r = RangeIndex(ranges, sec.Rva + (uint)start);
                            if (r < 0) return null;
                            if (decoded.Add(r)) Linear(ranges[r].Begin, ranges[r].End, ranges[r].Primary);
                            if (state[start] == Unknown) return null;
                        }
                    }
                }
            }
            var hits = _hits.Where(h => Kind(h) is { } kind && (needles & kind) != 0).ToList();
            hits.Sort((a, b) => a.Rva.CompareTo(b.Rva));
            return hits;
        }

        /// <summary>Legacy prefixes, and REX in 64-bit code (inc/dec in 32-bit code).</summary>
        private bool IsPrefix(byte b) => b is 0x26 or 0x2E or 0x36 or 0x3E or 0x64 or 0x65 or 0x66 or 0x67 or 0xF0 or 0xF2 or 0xF3
            || _code.Is64 && b is >= 0x40 and <= 0x4F;

        private static OpcodeNeedles? Kind(InstructionHit hit) => hit.Mnemonic switch
        {
            Rules.Facts.InstructionNames.Wrmsr => OpcodeNeedles.Wrmsr,
            Rules.Facts.InstructionNames.Rdmsr => OpcodeNeedles.Rdmsr,
            Rules.Facts.InstructionNames.Mov when hit.ControlRegister is not null => OpcodeNeedles.MovToCr,
            _ => null,
        };

        /// <summary>The index of the (non-overlapping, sorted) range holding <paramref name="rva"/>, or -1.</summary>
        private static int RangeIndex(IReadOnlyList<FunctionRange> ranges, uint rva)
        {
            int lo = 0, hi = ranges.Count - 1;
            while (lo <= hi)
            {
                var mid = (lo + hi) >>> 1;
                if (ranges[mid].Begin <= rva) lo = mid + 1; else hi = mid - 1;
            }
            return hi >= 0 && rva < ranges[hi].End ? hi : -1;
        }

        public CodeMap Run()
        {
            foreach (var f in _code.Functions.Entries) AddStart(f.Primary);
            // .pdata functions first: their bounds are the compiler's, not a guess.
            foreach (var f in _code.Functions.Entries) Linear(f.Begin, f.End, f.Primary);
            Enqueue(_image.AddressOfEntryPoint, strong: true);
            foreach (var e in _image.Exports.All)
                if (!e.IsForwarder) Enqueue(e.Rva, strong: true);
            Drain();
            // Then code addresses stored in data (dispatch tables, filter registrations, callbacks): every base
            // relocation whose target lies in code, taken like an address the code takes.
            RelocationSeeds();
            Drain();
            var fallback = false;
            if (_blocks.Count == 0 && _sections.Length > 0)
            {
                fallback = true;
                Sweep();
            }
            CodeStats.AddSweep();
            CodeStats.AddInstructions(_decoded);
            _hits.Sort((a, b) => a.Rva.CompareTo(b.Rva));
            return new CodeMap(SortedBlocks(), _hits, _references, _functions, _decoded, fallback);
        }

        /// <summary>
        /// The blocks by start. Starts are distinct (a block starts only at a byte no decode had claimed), so sorting
        /// by the start alone as a primitive key gives the one possible order, without a comparison delegate.
        /// </summary>
        private (uint, uint, uint)[] SortedBlocks()
        {
            var blocks = _blocks.ToArray();
            var starts = new uint[blocks.Length];
            for (var k = 0; k < blocks.Length; k++) starts[k] = blocks[k].Item1;
            Array.Sort(starts, blocks);
            return blocks;
        }

        private void Drain()
        {
            while (_queue.Count > 0 && _decoded < _budget)
            {
                var (rva, strong) = _queue.Dequeue();
                Descend(rva, strong);
            }
        }

        private void RelocationSeeds() => BaseRelocations.ForEachPointer(_image, includeHighLow: true, target =>
        {
            if (_code.AbsoluteToRva(target) is { } rva) Enqueue(rva, strong: false);
        });

        private void MarkDirectories()
        {
            for (var d = 0; d < 16; d++)
            {
                if (d == 4) continue; // the certificate table is a file offset, never mapped
                var dir = _image.GetDirectory(d);
                if (!dir.IsPresent) continue;
                MarkData(dir.VirtualAddress, (ulong)dir.VirtualAddress + dir.Size);
            }
        }

        private void MarkData(uint from, ulong to)
        {
            for (var s = 0; s < _state.Length; s++)
            {
                var sec = _sections[s];
                var a = Math.Max(from, sec.Rva);
                var b = Math.Min(to, sec.EndRva);
                for (var r = (ulong)a; r < b; r++) _state[s][r - sec.Rva] = Data;
            }
        }

        /// <summary>The first code section containing <paramref name="rva"/>, or -1 (the last one found is tried first).</summary>
        private int SectionIndex(uint rva)
        {
            var sections = _sections;
            var last = _lastSection;
            if (!_overlapping && (uint)last < (uint)sections.Length && sections[last].Contains(rva)) return last;
            for (var s = 0; s < sections.Length; s++)
                if (sections[s].Contains(rva)) return _lastSection = s;
            return -1;
        }

        /// <summary>Records a function start; false when it was one already.</summary>
        private bool AddStart(uint rva)
        {
            var s = SectionIndex(rva);
            if (s < 0) return _outsideStarts.Add(rva);
            var at = rva - _sections[s].Rva;
            ref var word = ref _startBits[s][at >> 6];
            var bit = 1UL << (int)(at & 63);
            if ((word & bit) != 0) return false;
            word |= bit;
            return true;
        }

        private bool IsStart(uint rva)
        {
            var s = SectionIndex(rva);
            if (s < 0) return _outsideStarts.Contains(rva);
            var at = rva - _sections[s].Rva;
            return (_startBits[s][at >> 6] & (1UL << (int)(at & 63))) != 0;
        }

        private void Enqueue(uint rva, bool strong)
        {
            var s = SectionIndex(rva);
            if (s < 0 || _state[s][rva - _sections[s].Rva] != Unknown) return;
            if (!AddStart(rva) && !strong) return;
            _queue.Enqueue((rva, strong));
        }

        /// <summary>A .pdata range, decoded from its start to its end.</summary>
        private void Linear(uint begin, uint end, uint function)
        {
            var s = SectionIndex(begin);
            if (s < 0) return;
            var sec = _sections[s];
            end = Math.Min(end, sec.EndRva);
            var state = _state[s];
            Point(sec, begin);
            var blockStart = begin;
            while (_decoder.IP < end && _decoded < _budget)
            {
                var ip = (uint)_decoder.IP;
                var st = state[ip - sec.Rva];
                if (st is Start or Data) break; // already decoded (overlapping hostile ranges) or a directory
                _decoder.Decode(out var i);
                _decoded++;
                if (i.IsInvalid) break;
                Mark(state, sec, i);
                var traits = Traits(i);
                Use(i, function, traits);
                if ((traits & FlowMask) == FlowCall && CodeRegion.IsDirectBranch(i)) Enqueue((uint)i.NearBranchTarget, strong: true);
            }
            if (_decoder.IP > blockStart) _blocks.Add((blockStart, (uint)Math.Min(_decoder.IP, end), function));
            _functions++;
        }

        /// <summary>
        /// Recursive descent of one function. A function seeded only by an address the code takes (not a call
        /// target, not an entry) is kept only when it decodes without an invalid instruction and does not start
        /// with a printable string: such addresses also point at strings merged into code.
        /// </summary>
        private void Descend(uint entry, bool strong)
        {
            var s0 = SectionIndex(entry);
            if (s0 < 0) return;
            if (!strong && LooksLikeString(_sections[s0], entry)) return;
            // Hits of a weak function wait until it proves to be code; allocated at its first hit (most have none).
            List<InstructionHit>? pendingHits = null;
            var invalid = false;
            var blocksBefore = _blocks.Count;
            _work.Clear();
            _work.Push(entry);
            while (_work.Count > 0 && _decoded < _budget)
            {
                var b = _work.Pop();
                var s = SectionIndex(b);
                if (s < 0) continue;
                var sec = _sections[s];
                var state = _state[s];
                if (state[b - sec.Rva] != Unknown) continue;
                Point(sec, b);
                var recent = 0;
                var secRva = sec.Rva;
                var secEnd = sec.EndRva;
                while (_decoded < _budget)
                {
                    var ip = (uint)_decoder.IP;
                    if (ip >= secEnd || state[ip - secRva] != Unknown) break;
                    // Decoded straight into the ring of recent instructions (jump tables look back at them).
                    ref var i = ref _recent[recent++ & 7];
                    _decoder.Decode(out i);
                    _decoded++;
                    if (i.IsInvalid || i.NextIP > secEnd) { invalid = true; break; }
                    Mark(state, sec, i);
                    var traits = Traits(i);
                    if (strong) Use(i, entry, traits);
                    else UseWeak(i, entry, traits, ref pendingHits);
                    var flow = traits & FlowMask;
                    if (flow == FlowNext) continue;
                    if (flow == FlowCall)
                    {
                        if (CodeRegion.IsDirectBranch(i)) Enqueue((uint)i.NearBranchTarget, strong: true);
                        continue;
                    }
                    if (flow == FlowConditional)
                    {
                        if (CodeRegion.IsDirectBranch(i)) _work.Push((uint)i.NearBranchTarget);
                        continue;
                    }
                    if (flow == FlowUnconditional)
                    {
                        // A jump to another function's start is a tail call, not more of this function.
                        if (CodeRegion.IsDirectBranch(i) && !IsStart((uint)i.NearBranchTarget)) _work.Push((uint)i.NearBranchTarget);
                        break;
                    }
                    if (flow == FlowIndirect)
                    {
                        JumpTable(i, recent, sec);
                        break;
                    }
                    break; // return, interrupt, exception
                }
                if (_decoder.IP > b) _blocks.Add((b, (uint)Math.Min(_decoder.IP, sec.EndRva), entry));
            }
            if (!strong)
            {
                // Not code after all: its bytes stay marked (never decoded again), its findings are dropped.
                if (invalid || DataLike(blocksBefore)) { _blocks.RemoveRange(blocksBefore, _blocks.Count - blocksBefore); return; }
                if (pendingHits is not null) _hits.AddRange(pendingHits);
            }
            _functions++;
        }

        private void Sweep()
        {
            for (var s = 0; s < _state.Length; s++)
            {
                var sec = _sections[s];
                var state = _state[s];
                var at = 0;
                while (at < sec.Bytes.Length)
                {
                    if (state[at] != Unknown) { at++; continue; }
                    Point(sec, sec.Rva + (uint)at);
                    _decoder.Decode(out var i);
                    _decoded++;
                    if (i.IsInvalid || i.NextIP > sec.EndRva) { at++; continue; }
                    if (InstructionScanner.Classify(i) is { } hit) _hits.Add(hit);
                    at += i.Length;
                }
            }
        }

        private void Point(CodeSection sec, uint rva)
        {
            var offset = (int)(rva - sec.Rva);
            _reader.Reset(sec.Bytes, offset, sec.Bytes.Length - offset);
            _decoder.IP = rva;
        }

        private static void Mark(byte[] state, CodeSection sec, in Instruction i)
        {
            var at = (int)(i.IP - sec.Rva);
            // One bounds check for the instruction's bytes (state has one byte per section byte).
            var bytes = state.AsSpan(at, Math.Min(i.Length, state.Length - at));
            bytes[0] = Start;
            for (var k = 1; k < bytes.Length; k++) if (bytes[k] == Unknown) bytes[k] = Inside;
        }

        /// <summary>Records the instruction's hit and the addresses it takes; seeds functions at code addresses it takes.</summary>
        private void Use(in Instruction i, uint function, int traits)
        {
            if ((traits & Privileged) != 0 && InstructionScanner.Classify(i) is { } hit) _hits.Add(hit with { FunctionRva = function });
            References(i, traits);
        }

        /// <summary><see cref="Use"/> in a weak function: its hits wait in <paramref name="pendingHits"/>.</summary>
        private void UseWeak(in Instruction i, uint function, int traits, ref List<InstructionHit>? pendingHits)
        {
            if ((traits & Privileged) != 0 && InstructionScanner.Classify(i) is { } hit) (pendingHits ??= []).Add(hit with { FunctionRva = function });
            References(i, traits);
        }

        private void References(in Instruction i, int traits)
        {
            if (i.IsIPRelativeMemoryOperand)
            {
                var target = i.IPRelativeMemoryAddress;
                if (target < _sizeOfImage)
                {
                    _references.Add((uint)target);
                    if ((traits & IsLea) != 0) Enqueue((uint)target, strong: false);
                }
                return;
            }
            if (_is64) return;
            var count = (traits >> OpCountShift) & 7;
            for (var k = 0; k < count; k++)
            {
                var kind = k switch { 0 => i.Op0Kind, 1 => i.Op1Kind, 2 => i.Op2Kind, 3 => i.Op3Kind, _ => i.Op4Kind };
                switch (kind)
                {
                    // An absolute address: AddressBase + an RVA inside the image (below the base, the difference wraps
                    // past every image size). With a base register too, only a displacement that is such an address counts.
                    case OpKind.Memory:
                        if ((ulong)i.MemoryDisplacement32 - _addressBase < _sizeOfImage) _references.Add((uint)(i.MemoryDisplacement32 - _addressBase));
                        break;
                    case OpKind.Immediate32 or OpKind.Immediate8to32:
                        if ((ulong)i.Immediate32 - _addressBase < _sizeOfImage)
                        {
                            var v = (uint)(i.Immediate32 - _addressBase);
                            _references.Add(v);
                            if ((traits & IsPushOrMov) != 0) Enqueue(v, strong: false);
                        }
                        break;
                }
            }
        }

        /// <summary>
        /// Whether the blocks decoded since <paramref name="first"/> cover text (a run of 8 printable bytes, or 6
        /// printable UTF-16 characters) or 8 zero bytes: compiled code almost never does, strings and tables do.
        /// </summary>
        private bool DataLike(int first)
        {
            for (var k = first; k < _blocks.Count; k++)
            {
                var (start, end, _) = _blocks[k];
                var s = SectionIndex(start);
                if (s < 0) continue;
                var sec = _sections[s];
                // The section's bytes after the block may be loaded (and masked off): a short block is one vector compare.
                if (DataRuns.Any(sec.Bytes.AsSpan((int)(start - sec.Rva)), (int)(Math.Min(end, sec.EndRva) - start))) return true;
            }
            return false;
        }

        private static bool LooksLikeString(CodeSection sec, uint rva)
        {
            var at = (int)(rva - sec.Rva);
            var b = sec.Bytes;
            int ascii = 0, wide = 0;
            while (at + ascii < b.Length && ascii < 4 && IsText(b[at + ascii])) ascii++;
            while (at + 2 * wide + 1 < b.Length && wide < 4 && IsText(b[at + 2 * wide]) && b[at + 2 * wide + 1] == 0) wide++;
            return ascii >= 4 || wide >= 4;
        }

        private static bool IsText(byte c) => c is >= 0x20 and < 0x7f;

        /// <summary>
        /// Jump tables of the shapes compilers emit: x86 <c>jmp [idx*4 + table]</c> (absolute entries); x64
        /// <c>mov r32, [base + idx*4 + table]</c> … <c>jmp reg</c> with base = the image base (RVA entries, MSVC) or
        /// <c>movsxd reg, [base + idx*4]</c> with base = the table (table-relative entries, GCC). The entries become
        /// blocks of the function; the table bytes, when in code, become data.
        /// </summary>
        private void JumpTable(in Instruction jump, int recent, CodeSection sec)
        {
            uint tableRva;
            bool relative = false, rvaEntries = false;
            Register index;
            if (!_code.Is64)
            {
                if (jump.Op0Kind != OpKind.Memory || jump.MemoryBase != Register.None || jump.MemoryIndexScale != 4) return;
                if (_code.AbsoluteToRva(jump.MemoryDisplacement32) is not { } t) return;
                tableRva = t;
                index = jump.MemoryIndex;
            }
            else
            {
                if (jump.Op0Kind != OpKind.Register) return;
                // The load of the entry, and where its base register came from, among the last few instructions.
                Instruction? load = null;
                var n = Math.Min(recent, _recent.Length);
                for (var k = 1; k < n && load is null; k++)
                {
                    ref readonly var p = ref _recent[(recent - 1 - k) & 7];
                    if (p.Mnemonic is Mnemonic.Mov or Mnemonic.Movsxd && p.Op1Kind == OpKind.Memory && p.MemoryIndexScale == 4 && p.MemoryBase != Register.None)
                        load = p;
                }
                if (load is not { } l) return;
                ulong? baseValue = null;
                for (var k = 1; k < n; k++)
                {
                    ref readonly var p = ref _recent[(recent - 1 - k) & 7];
                    if (p.Mnemonic == Mnemonic.Lea && p.Op0Register == l.MemoryBase && p.IsIPRelativeMemoryOperand) { baseValue = p.IPRelativeMemoryAddress; break; }
                }
                if (baseValue is not { } bv) return;
                index = l.MemoryIndex;
                if (bv == 0) { tableRva = (uint)l.MemoryDisplacement64; rvaEntries = true; }
                else if (l.MemoryDisplacement64 == 0 && bv < _image.SizeOfImage) { tableRva = (uint)bv; relative = true; }
                else return;
            }
            var limit = BoundFromCompare(index, recent) ?? MaxJumpTableEntries;
            Span<byte> entry = stackalloc byte[4];
            for (var e = 0; e < limit; e++)
            {
                var at = tableRva + (uint)(4 * e);
                if (_image.ReadRva(at, entry) < 4) break;
                var raw = BinaryPrimitives.ReadUInt32LittleEndian(entry);
                uint? target = relative ? tableRva + raw : rvaEntries ? raw : _code.AbsoluteToRva(raw);
                if (target is not { } tr || !sec.Contains(tr)) break;
                var ts = _state[SectionIndex(tr)];
                if (ts[tr - sec.Rva] is Data or Inside) break;
                // The table itself sits in code: its bytes are data from now on.
                var inCode = SectionIndex(at);
                if (inCode >= 0)
                {
                    var st = _state[inCode];
                    var off = at - _sections[inCode].Rva;
                    if (st[off] == Start) break; // ran into code: the table ended
                    var length = _sections[inCode].Bytes.Length;
                    for (var k = 0u; k < 4 && off + k < length; k++) st[off + k] = Data;
                }
                _work.Push(tr);
            }
        }

        /// <summary><c>cmp idx, N</c> before the jump bounds the table to N + 1 entries.</summary>
        private int? BoundFromCompare(Register index, int recent)
        {
            if (index == Register.None) return null;
            var full = index.GetFullRegister();
            var n = Math.Min(recent, _recent.Length);
            for (var k = 1; k < n; k++)
            {
                ref readonly var p = ref _recent[(recent - 1 - k) & 7];
                if (p.Mnemonic == Mnemonic.Cmp && p.Op0Kind == OpKind.Register && p.Op0Register.GetFullRegister() == full
                    && p.Op1Kind is OpKind.Immediate8 or OpKind.Immediate8to32 or OpKind.Immediate32 or OpKind.Immediate8to64 or OpKind.Immediate32to64)
                    return (int)Math.Min(p.GetImmediate(1) + 1, MaxJumpTableEntries);
            }
            return null;
        }
    }
}
