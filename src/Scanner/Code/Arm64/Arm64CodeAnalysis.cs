using System.Buffers.Binary;
using DriverAudit.Rules.Facts;
using DriverAudit.Rules.Kernel;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Code.Arm64;

/// <summary>
/// The code facts of an ARM64 image, from one pass: functions (ARM64 <c>.pdata</c> ranges, then recursive descent
/// from the entry point, exports, <c>BL</c> targets, code addresses the code takes and relocations into code), and
/// per function a forward data-flow over its blocks that tracks, for x0..x30, SP and the stack slots, a proven
/// constant, an image address, the value of an IAT slot, the function's incoming parameter, a stack position, or
/// nothing (paths merge at block starts; what differs becomes unknown). From it: call sites of imports
/// (<c>ADRP</c>+<c>LDR</c>+<c>BLR</c>, the value kept in a callee-saved register or a stack slot, tail calls
/// <c>BR</c>, import thunks <c>ADRP x16</c>/<c>LDR x16</c>/<c>BR x16</c> and their <c>BL</c>/<c>B</c> callers) with
/// arguments x0..x3 (constants from <c>MOVZ</c>/<c>MOVN</c>/<c>MOVK</c>/<c>ORR</c>, register copies, literal pools and
/// read-only data); privileged system-register accesses (<c>MSR</c>/<c>MRS</c>); the addresses the code takes; and
/// pool arguments followed through the driver's own wrappers (as <see cref="WrapperTracer"/> does on x86/x64).
/// </summary>
internal sealed class Arm64CodeAnalysis
{
    private const int MaxBlockVisits = 16;
    private const int MaxFunctionInstructions = 1 << 16;
    private const int TrackedSlots = 64;

    private readonly CodeImage _code;
    private readonly PeImage _image;
    private readonly Dictionary<uint, ImportFact> _slots = [];
    private readonly HashSet<uint> _functionStarts = [];
    private readonly Queue<uint> _queue = new();
    private readonly Dictionary<uint, Function> _functions = [];
    private readonly List<(uint Start, uint End, uint Function)> _blocks = [];
    private readonly HashSet<uint> _references = [];
    private readonly List<InstructionHit> _hits = [];
    // Thunk answers by address, with the decodes the first look cost (a repeated look counts them again, so the
    // budget, and so the result on a hostile image, is the same as without the cache).
    private readonly Dictionary<uint, (ImportFact? Api, int Cost)> _thunks = [];
    private long _decoded;
    private readonly long _budget;

    private Arm64CodeAnalysis(CodeImage code, PeImage image, IReadOnlyList<ImportFact> imports)
    {
        _code = code;
        _image = image;
        foreach (var i in imports)
            if (i.SlotRva is uint slot) _slots.TryAdd(slot, i);
        long total = 0;
        foreach (var s in code.Sections) total += s.Bytes.Length / 4;
        // Each instruction is decoded once by descent, peeked a few times as a branch target, and simulated at most
        // MaxBlockVisits + 1 times by the data-flow: the budget bounds the work by the code's size, whatever it holds.
        _budget = total * (MaxBlockVisits + 8) + 64;
    }

    public IReadOnlyList<CallSite> CallSites { get; private set; } = [];
    public IReadOnlyList<InstructionHit> Hits => _hits;
    public IReadOnlySet<uint> References => _references;
    public IReadOnlyList<WrappedCall> Wrapped { get; private set; } = [];
    public int FunctionCount => _functions.Count;
    public long InstructionsDecoded => _decoded;
    private (uint Start, uint End, uint Function)[] _sortedBlocks = [];

    public uint? FunctionOf(uint rva)
    {
        var b = _sortedBlocks;
        int lo = 0, hi = b.Length - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (b[mid].Start <= rva) lo = mid + 1; else hi = mid - 1;
        }
        return hi >= 0 && rva < b[hi].End ? b[hi].Function : null;
    }

    public static Arm64CodeAnalysis Run(CodeImage code, PeImage image, IReadOnlyList<ImportFact> imports)
    {
        var a = new Arm64CodeAnalysis(code, image, imports);
        a.Analyse();
        return a;
    }

    // ------------------------------------------------------------------ values

    private enum K : byte { Unknown, Const, Addr, Import, Param, Sp }

    /// <summary>What a register or stack slot holds. Addr/Import/Sp values are 64-bit by nature.</summary>
    private readonly record struct V(K Kind, ulong X)
    {
        public static readonly V Unknown = default;
        public static V Const(ulong x) => new(K.Const, x);
        public bool Is(K k) => Kind == k;
    }

    private readonly record struct Slot(long Offset, int Size, V Value);

    /// <summary>The abstract machine at one point: x0..x30, SP (a stack position or unknown) and known stack slots.</summary>
    private sealed class State
    {
        public readonly V[] Regs = new V[31];
        public V Sp;
        public readonly List<Slot> Slots = [];

        public void CopyFrom(State other)
        {
            Sp = other.Sp;
            Array.Copy(other.Regs, Regs, Regs.Length);
            Slots.Clear();
            Slots.AddRange(other.Slots);
        }

        /// <summary>Nothing known: every register and SP unknown, no slots.</summary>
        public void Reset()
        {
            Sp = V.Unknown;
            Array.Clear(Regs);
            Slots.Clear();
        }

        /// <summary>Keeps what both paths agree on; true when this state changed.</summary>
        public bool Meet(State other)
        {
            var changed = false;
            for (var r = 0; r < Regs.Length; r++)
                if (Regs[r] != other.Regs[r] && !Regs[r].Is(K.Unknown)) { Regs[r] = V.Unknown; changed = true; }
            if (Sp != other.Sp && !Sp.Is(K.Unknown)) { Sp = V.Unknown; changed = true; }
            for (var n = Slots.Count - 1; n >= 0; n--)
                if (!other.Slots.Contains(Slots[n])) { Slots.RemoveAt(n); changed = true; }
            return changed;
        }
    }

    // ------------------------------------------------------------------ functions

    private sealed class Function(uint start, uint? end)
    {
        public uint Start = start;
        public uint? End = end;
        public readonly Dictionary<uint, int> BlockIndex = [];
        public readonly List<(uint Start, uint End)> Blocks = [];
        public bool Escapes;
        public bool IsThunk;
    }

    /// <summary>A direct call or tail jump to a function of the image, with the argument registers at the call.</summary>
    private readonly record struct Edge(uint Site, uint Target, bool Tail, V[] Args, uint Caller);

    /// <summary>A call of an import: the state of x0..x7 at the call, and the shape.</summary>
    private readonly record struct RawSite(uint Site, ImportFact Api, CallSiteShape Shape, V[] Args, uint Function);

    private readonly List<Edge> _edges = [];
    private readonly List<RawSite> _rawSites = [];

    private void Analyse()
    {
        foreach (var f in _code.Functions.Entries)
        {
            _functionStarts.Add(f.Begin);
            _functions.TryAdd(f.Begin, new Function(f.Begin, f.End));
        }
        foreach (var f in _code.Functions.Entries) _queue.Enqueue(f.Begin);
        Seed(_image.AddressOfEntryPoint);
        foreach (var e in _image.Exports.All)
            if (!e.IsForwarder) Seed(e.Rva);
        Drain();
        RelocationSeeds();
        Drain();
        Resolve();
        _blocks.Sort((a, b) => a.Start.CompareTo(b.Start));
        _sortedBlocks = [.. _blocks];
        _hits.Sort((a, b) => a.Rva.CompareTo(b.Rva));
        CodeStats.AddSweep();
        CodeStats.AddInstructions(_decoded);
    }

    private readonly HashSet<uint> _weak = [];

    /// <summary>A function start. Weak ones (addresses found in data or taken by the code) are dropped if they do not decode.</summary>
    private void Seed(uint rva, bool weak = false)
    {
        if ((rva & 3) != 0 || FindSection(rva) is null) return;
        if (!_functionStarts.Add(rva)) { if (!weak) _weak.Remove(rva); return; }
        if (weak) _weak.Add(rva);
        _queue.Enqueue(rva);
    }

    private void Drain()
    {
        while (_queue.Count > 0 && _decoded < _budget)
        {
            var start = _queue.Dequeue();
            if (!_functions.TryGetValue(start, out var f))
            {
                if (InsideKnownBlock(start)) continue; // an address inside an analysed function: not a new one
                _functions[start] = f = new Function(start, null);
            }
            else if (f.Blocks.Count > 0) continue;
            AnalyseFunction(f);
        }
    }

    // Per code section, one bit per word: the words some analysed function's blocks hold.
    private ulong[][]? _covered;

    private bool InsideKnownBlock(uint rva)
    {
        if ((rva & 3) != 0 || _covered is null || SectionIndex(rva) is not (>= 0 and var k)) return false;
        var word = (rva - _code.Sections[k].Rva) >> 2;
        return (_covered[k][word >> 6] & (1UL << (int)(word & 63))) != 0;
    }

    private void Cover(int k, uint start, uint end)
    {
        _covered ??= [.. _code.Sections.Select(x => new ulong[(x.Bytes.Length >> 8) + 1])];
        var bits = _covered[k];
        var first = (start - _code.Sections[k].Rva) >> 2;
        for (var word = first; word < first + ((end - start) >> 2); word++)
            bits[word >> 6] |= 1UL << (int)(word & 63);
    }

    // A for loop over the sections: CodeImage.FindSection's foreach over the IReadOnlyList allocates an enumerator per
    // call, and this runs once per decoded word.
    private CodeSection? FindSection(uint rva) => SectionIndex(rva) is >= 0 and var k ? _code.Sections[k] : null;

    private int SectionIndex(uint rva)
    {
        var sections = _code.Sections;
        for (var k = 0; k < sections.Count; k++)
            if (sections[k].Contains(rva)) return k;
        return -1;
    }

    // ARM64 images store pointers as DIR64 only.
    private void RelocationSeeds() => BaseRelocations.ForEachPointer(_image, includeHighLow: false, target =>
    {
        if (_code.AbsoluteToRva(target) is { } rva && !InsideKnownBlock(rva)) Seed(rva, weak: true);
    });

    private bool TryWord(uint rva, out uint word)
    {
        word = 0;
        var s = FindSection(rva);
        if (s is null || rva + 4 > s.EndRva) return false;
        word = BinaryPrimitives.ReadUInt32LittleEndian(s.Bytes.AsSpan((int)(rva - s.Rva)));
        return true;
    }

    private A64Instruction? At(uint rva)
    {
        if ((rva & 3) != 0 || !TryWord(rva, out var w)) return null;
        _decoded++;
        return A64Decoder.Decode(w, rva);
    }

    /// <summary><c>ADRP xN; LDR xN, [xN, #off]; BR xN</c> with the LDR reading an IAT slot: the import it jumps to.</summary>
    private ImportFact? ThunkAt(uint rva)
    {
        if (_thunks.TryGetValue(rva, out var known))
        {
            _decoded += known.Cost;
            return known.Api;
        }
        var before = _decoded;
        var api = FindThunk(rva);
        // A found thunk was never decoded again before the cache either: it costs nothing from now on.
        _thunks[rva] = (api, api is null ? (int)(_decoded - before) : 0);
        return api;
    }

    private ImportFact? FindThunk(uint rva)
    {
        if (At(rva) is not { Kind: A64Kind.Adrp } a || At(rva + 4) is not { Kind: A64Kind.Load, Size: 8, Writeback: false } l
            || At(rva + 8) is not { Kind: A64Kind.Br, Op: 0 } b || l.Rn != a.Rd || b.Rn != l.Rd) return null;
        return _slots.TryGetValue((uint)(a.Target + (ulong)l.Imm), out var api) ? api : null;
    }

    // Scratch of AnalyseFunction, reused from one function to the next (functions are analysed one at a time).
    private readonly List<uint> _leaders = [];
    private readonly Stack<uint> _work = new();
    private readonly List<uint> _calls = [];
    // Per code section, per word: the serial of the last function whose descent visited it.
    private int[][]? _visitedBy;
    private int _serial;
    // The decoded instructions of the current function's blocks, block after block (block b from _blockFirst[b]).
    private A64Instruction[] _insns = new A64Instruction[256];
    private readonly List<int> _blockFirst = [];

    /// <summary>Blocks of one function by descent, then the data-flow over them.</summary>
    private void AnalyseFunction(Function f)
    {
        var k = SectionIndex(f.Start);
        if (k < 0) return;
        var section = _code.Sections[k];
        var end = f.End is { } e ? Math.Min(e, section.EndRva) : section.EndRva;
        if (ThunkAt(f.Start) is not null) { f.IsThunk = true; f.End ??= f.Start + 12; }
        // Block leaders by descent.
        var leaders = _leaders;
        leaders.Clear();
        leaders.Add(f.Start);
        var work = _work;
        work.Clear();
        work.Push(f.Start);
        _visitedBy ??= [.. _code.Sections.Select(x => new int[(x.Bytes.Length >> 2) + 1])];
        var visitedBy = _visitedBy[k];
        var serial = ++_serial;
        var count = 0;
        var weak = _weak.Contains(f.Start);
        var calls = _calls;
        calls.Clear();
        while (work.Count > 0 && count < MaxFunctionInstructions)
        {
            var pc = work.Pop();
            while (pc >= section.Rva && (ulong)pc + 4 <= end && !Visited(pc) && count++ < MaxFunctionInstructions)
            {
                if (At(pc) is not { } i || i.Kind == A64Kind.Undefined)
                {
                    if (weak) return; // not code after all (a literal pool or a table whose address the code takes)
                    break;
                }
                visitedBy[(pc - section.Rva) >> 2] = serial;
                if (i.Kind == A64Kind.Bl) calls.Add((uint)i.Target);
                if (i.IsConditional) { Leader((uint)i.Target); leaders.Add(pc + 4); }
                if (i.Kind == A64Kind.B)
                {
                    var t = (uint)i.Target;
                    if (!IsTailTarget(f, t, section, end)) Leader(t);
                    else calls.Add(t);
                }
                if (i.EndsFlow) { leaders.Add(pc + 4); break; }
                pc += 4;
            }
        }
        foreach (var c in calls) Seed(c);
        void Leader(uint t)
        {
            if (t < section.Rva || (ulong)t + 4 > end || (t & 3) != 0) return;
            leaders.Add(t);
            work.Push(t);
        }
        // Only aligned words inside the section are ever visited; others (an unaligned .pdata start) never are.
        bool Visited(uint pc) => (pc & 3) == 0 && pc >= section.Rva && pc < section.EndRva && visitedBy[(pc - section.Rva) >> 2] == serial;
        // Blocks: each leader up to the next leader or a flow end, over visited instructions only.
        leaders.Sort();
        _blockFirst.Clear();
        var decoded = 0;
        for (var n = 0; n < leaders.Count; n++)
        {
            var s = leaders[n];
            if (n > 0 && leaders[n - 1] == s) continue;
            if (!Visited(s)) continue;
            var next = end;
            for (var m = n + 1; m < leaders.Count; m++)
                if (leaders[m] != s) { next = leaders[m]; break; }
            _blockFirst.Add(decoded);
            var pc = s;
            while (pc < next && Visited(pc))
            {
                if (decoded == _insns.Length) Array.Resize(ref _insns, _insns.Length * 2);
                var i = _insns[decoded++] = A64Decoder.Decode(Word(section, pc), pc);
                pc += 4;
                if (i.EndsFlow) break;
            }
            f.BlockIndex[s] = f.Blocks.Count;
            f.Blocks.Add((s, pc));
            _blocks.Add((s, pc, f.Start));
            Cover(k, s, pc);
        }
        if (f.Blocks.Count == 0) return;
        _blockFirst.Add(decoded);
        f.Escapes = StackEscapes(f);
        Flow(f);
    }

    /// <summary>The decoded instructions of block <paramref name="b"/> of the function being analysed.</summary>
    private ReadOnlySpan<A64Instruction> BlockInstructions(int b) => _insns.AsSpan(_blockFirst[b], _blockFirst[b + 1] - _blockFirst[b]);

    private static uint Word(CodeSection s, uint rva) => BinaryPrimitives.ReadUInt32LittleEndian(s.Bytes.AsSpan((int)(rva - s.Rva)));

    /// <summary>A B to another function's start, a thunk, or outside this function's .pdata range is a tail call.</summary>
    private bool IsTailTarget(Function f, uint target, CodeSection section, uint end)
    {
        if (target == f.Start) return false; // a loop back to the entry
        if (_functionStarts.Contains(target)) return true;
        if (target < f.Start || (f.End is not null && target >= end)) return true;
        return !section.Contains(target) || ThunkAt(target) is not null;
    }

    /// <summary>Whether a stack address is handed out (a local's address in another register): callees may write slots.</summary>
    private bool StackEscapes(Function f)
    {
        foreach (ref readonly var i in _insns.AsSpan(0, _blockFirst[f.Blocks.Count]))
            if (i.Kind == A64Kind.AddImm && !i.SetsFlags && (i.Rn == 31 || i.Rn == 29) && i.Rd != 31 && i.Rd != 29) return true;
        return false;
    }

    // ------------------------------------------------------------------ data-flow

    // Scratch of Flow: states of blocks come from and go back to this pool, the lists are reused per block visit.
    private readonly Stack<State> _statePool = new();
    private readonly State _scratch = new();
    private readonly List<RawSite> _siteScratch = [];
    private readonly List<Edge> _edgeScratch = [];

    private State Rent()
    {
        if (!_statePool.TryPop(out var s)) return new State();
        s.Reset();
        return s;
    }

    private void Flow(Function f)
    {
        var states = new State?[f.Blocks.Count];
        var visits = new int[f.Blocks.Count];
        var entry = Rent();
        entry.Sp = new V(K.Sp, 0);
        for (var p = 0; p < 8; p++) entry.Regs[p] = new V(K.Param, (ulong)p);
        states[0] = entry;
        var work = new Queue<int>();
        var queued = new bool[f.Blocks.Count];
        work.Enqueue(0);
        queued[0] = true;
        // Facts (sites, edges, hits) are recorded on the last visit of each block: collect per block, keep the latest.
        var blockSites = new RawSite[]?[f.Blocks.Count];
        var blockEdges = new Edge[]?[f.Blocks.Count];
        var st = _scratch;
        var sites = _siteScratch;
        var edges = _edgeScratch;
        while (work.Count > 0 && _decoded < _budget)
        {
            var b = work.Dequeue();
            queued[b] = false;
            if (++visits[b] > MaxBlockVisits) continue;
            // A block whose entry keeps changing is given up on: from now on nothing is known at its start.
            if (visits[b] == MaxBlockVisits) { states[b]!.Reset(); states[b]!.Sp = V.Unknown; }
            st.CopyFrom(states[b]!);
            sites.Clear();
            edges.Clear();
            A64Instruction last = default;
            foreach (ref readonly var i in BlockInstructions(b))
            {
                _decoded++;
                last = i;
                Step(f, st, i, sites, edges);
            }
            blockSites[b] = sites.Count > 0 ? [.. sites] : null;
            blockEdges[b] = edges.Count > 0 ? [.. edges] : null;
            // Successors: the fall-through and the branch target, when inside the function.
            if (!last.EndsFlow) Propagate(f.Blocks[b].End);
            if (last.IsConditional || (last.Kind == A64Kind.B && f.BlockIndex.ContainsKey((uint)last.Target))) Propagate((uint)last.Target);

            void Propagate(uint target)
            {
                if (!f.BlockIndex.TryGetValue(target, out var t)) return;
                var changed = false;
                if (states[t] is null) { (states[t] = Rent()).CopyFrom(st); changed = true; }
                else changed = states[t]!.Meet(st);
                if (changed && !queued[t]) { queued[t] = true; work.Enqueue(t); }
            }
        }
        foreach (var s in blockSites) if (s is not null) _rawSites.AddRange(s);
        foreach (var e in blockEdges) if (e is not null) _edges.AddRange(e);
        // Privileged instructions: once per instruction, in every block reached.
        for (var b = 0; b < f.Blocks.Count; b++)
        {
            if (states[b] is not { } reached) continue;
            _statePool.Push(reached);
            foreach (ref readonly var i in BlockInstructions(b))
                if (Privileged(i, f.Start) is { } hit) _hits.Add(hit);
        }
    }

    private static InstructionHit? Privileged(in A64Instruction i, uint function)
    {
        switch (i.Kind)
        {
            case A64Kind.Msr when !A64SystemRegisters.IsUnprivileged(i.SysReg):
                return new InstructionHit((uint)i.Pc, InstructionNames.Msr, A64SystemRegisters.Name(i.SysReg).ToLowerInvariant(), function);
            case A64Kind.Mrs when !A64SystemRegisters.IsUnprivileged(i.SysReg):
                return new InstructionHit((uint)i.Pc, InstructionNames.Mrs, A64SystemRegisters.Name(i.SysReg).ToLowerInvariant(), function);
            // PSTATE.PAN and UAO guard kernel access to user memory (SMAP's role); DAIF/SPSel changes are ordinary.
            case A64Kind.MsrImm when A64SystemRegisters.PstateField(i.SysReg) is "PAN" or "UAO":
                return new InstructionHit((uint)i.Pc, InstructionNames.Msr, A64SystemRegisters.PstateField(i.SysReg)!.ToLowerInvariant(), function);
            default:
                return null;
        }
    }

    private V Read(State s, int r, bool is64)
    {
        if (r == 31) return V.Const(0); // XZR in the operand positions this is used for
        var v = s.Regs[r];
        return is64 ? v : Narrow(v);
    }

    /// <summary>The low 32 bits: constants are masked, a parameter stays itself (its 32-bit view), addresses are lost.</summary>
    private static V Narrow(V v) => v.Kind switch
    {
        K.Const => V.Const(v.X & 0xFFFF_FFFF),
        K.Param => v,
        _ => V.Unknown,
    };

    private static void Write(State s, int r, V v, bool is64)
    {
        if (r == 31) return;
        s.Regs[r] = is64 ? v : Narrow(v);
    }

    private V Base(State s, int rn) => rn == 31 ? s.Sp : s.Regs[rn];

    private void SetBase(State s, int rn, V v)
    {
        if (rn == 31) { if (s.Sp != v) { s.Sp = v; if (!v.Is(K.Sp)) s.Slots.Clear(); } }
        else s.Regs[rn] = v;
    }

    private static V Offset(V b, long imm) => b.Kind switch
    {
        K.Sp or K.Addr => new V(b.Kind, b.X + (ulong)imm),
        _ => V.Unknown,
    };

    private void Step(Function f, State s, in A64Instruction i, List<RawSite> sites, List<Edge> edges)
    {
        switch (i.Kind)
        {
            case A64Kind.Adrp:
                Write(s, i.Rd, new V(K.Addr, i.Target), true);
                return;
            case A64Kind.Adr:
                Write(s, i.Rd, new V(K.Addr, i.Target), true);
                TakeAddress((uint)i.Target, seed: true);
                return;
            case A64Kind.AddImm:
                {
                    var src = i.Rn == 31 ? s.Sp : s.Regs[i.Rn];
                    V result;
                    if (src.Is(K.Const)) result = V.Const(Mask(src.X + (ulong)i.Imm, i.Is64));
                    else if (!i.Is64) result = i.Imm == 0 && !i.SetsFlags ? Narrow(src) : V.Unknown;
                    else if (src.Kind is K.Sp or K.Addr) result = Offset(src, i.Imm);
                    else result = i.Imm == 0 ? src : V.Unknown;
                    if (result.Is(K.Addr) && i.Imm != 0) TakeAddress((uint)result.X, seed: true);
                    if (i.SetsFlags) { Write(s, i.Rd, result, i.Is64); return; }
                    if (i.Rd == 31) SetBase(s, 31, result.Is(K.Sp) ? result : V.Unknown);
                    else s.Regs[i.Rd] = i.Is64 ? result : Narrow(result);
                    return;
                }
            case A64Kind.MovZ:
                Write(s, i.Rd, V.Const(Mask((ulong)i.Imm << i.Shift, i.Is64)), i.Is64);
                return;
            case A64Kind.MovN:
                Write(s, i.Rd, V.Const(Mask(~((ulong)i.Imm << i.Shift), i.Is64)), i.Is64);
                return;
            case A64Kind.MovK:
                {
                    var old = Read(s, i.Rd, true); // Rd 31 is XZR: the write below is discarded
                    var v = old.Is(K.Const) ? V.Const(Mask((old.X & ~(0xFFFFUL << i.Shift)) | ((ulong)i.Imm << i.Shift), i.Is64)) : V.Unknown;
                    Write(s, i.Rd, v, i.Is64);
                    return;
                }
            case A64Kind.LogicalImm:
                {
                    var src = Read(s, i.Rn, i.Is64);
                    var v = src.Is(K.Const) ? V.Const(Mask(i.Op switch { 0 or 3 => src.X & (ulong)i.Imm, 1 => src.X | (ulong)i.Imm, _ => src.X ^ (ulong)i.Imm }, i.Is64)) : V.Unknown;
                    if (i.Rd == 31) { if (!i.SetsFlags) SetBase(s, 31, V.Unknown); return; }
                    Write(s, i.Rd, v, i.Is64);
                    return;
                }
            case A64Kind.LogicalReg:
                {
                    V v;
                    if (i.Op == 2 && i.Rn == 31 && i.Imm == 0 && i.Shift == 0) v = Read(s, i.Rm, i.Is64); // MOV
                    else
                    {
                        var a = Read(s, i.Rn, i.Is64);
                        var b = Read(s, i.Rm, i.Is64);
                        v = a.Is(K.Const) && b.Is(K.Const) && i.Shift == 0 && i.Op is 0 or 2 or 4 or 6
                            ? V.Const(Mask(i.Op switch { 0 or 6 => a.X & (b.X << (int)i.Imm), 2 => a.X | (b.X << (int)i.Imm), _ => a.X ^ (b.X << (int)i.Imm) }, i.Is64))
                            : V.Unknown;
                    }
                    Write(s, i.Rd, v, i.Is64);
                    return;
                }
            case A64Kind.LoadLiteral:
                {
                    TakeAddress((uint)i.Target);
                    Write(s, i.Rd, ReadOnlyValue((uint)i.Target, i.Size, i.Signed, i.Is64), i.Is64);
                    return;
                }
            case A64Kind.Load:
                {
                    var b = Base(s, i.Rn);
                    var at = i.PostIndex ? b : Offset(b, i.Imm);
                    Write(s, i.Rd, LoadFrom(s, at, i.Size, i.Signed, i.Is64), i.Is64);
                    if (i.Writeback && i.Rd != i.Rn) SetBase(s, i.Rn, Offset(b, i.Imm));
                    return;
                }
            case A64Kind.LoadPair:
                {
                    var b = Base(s, i.Rn);
                    var at = i.PostIndex ? b : Offset(b, i.Imm);
                    var first = LoadFrom(s, at, i.Size, i.Signed, i.Is64);
                    var second = LoadFrom(s, Offset(at, i.Size), i.Size, i.Signed, i.Is64);
                    Write(s, i.Rd, first, i.Is64);
                    Write(s, i.Rt2, second, i.Is64);
                    if (i.Writeback) SetBase(s, i.Rn, Offset(b, i.Imm));
                    return;
                }
            case A64Kind.Store:
                {
                    var b = Base(s, i.Rn);
                    var at = i.PostIndex ? b : Offset(b, i.Imm);
                    StoreTo(f, s, at, i.Size, Read(s, i.Rd, i.Size == 8));
                    if (i.Writeback) SetBase(s, i.Rn, Offset(b, i.Imm));
                    return;
                }
            case A64Kind.StorePair:
                {
                    var b = Base(s, i.Rn);
                    var at = i.PostIndex ? b : Offset(b, i.Imm);
                    StoreTo(f, s, at, i.Size, Read(s, i.Rd, i.Is64));
                    StoreTo(f, s, Offset(at, i.Size), i.Size, Read(s, i.Rt2, i.Is64));
                    if (i.Writeback) SetBase(s, i.Rn, Offset(b, i.Imm));
                    return;
                }
            case A64Kind.Bl:
                {
                    var target = (uint)i.Target;
                    var args = Args(s);
                    if (ThunkAt(target) is { } api) sites.Add(new RawSite((uint)i.Pc, api, CallSiteShape.ViaThunk, args, f.Start));
                    else edges.Add(new Edge((uint)i.Pc, target, false, args, f.Start));
                    Call(f, s);
                    return;
                }
            case A64Kind.Blr:
                {
                    if (Read(s, i.Rn, true) is { Kind: K.Import } v && _slots.TryGetValue((uint)v.X, out var api)) // Rn 31: XZR
                        sites.Add(new RawSite((uint)i.Pc, api, CallSiteShape.ViaRegister, Args(s), f.Start));
                    Call(f, s);
                    return;
                }
            case A64Kind.Br:
                if (!f.IsThunk && Read(s, i.Rn, true) is { Kind: K.Import } t && _slots.TryGetValue((uint)t.X, out var tapi))
                    sites.Add(new RawSite((uint)i.Pc, tapi, CallSiteShape.ViaRegister | CallSiteShape.TailCall, Args(s), f.Start));
                return;
            case A64Kind.B:
                {
                    var target = (uint)i.Target;
                    if (f.BlockIndex.ContainsKey(target)) return; // a jump inside the function
                    if (ThunkAt(target) is { } api) sites.Add(new RawSite((uint)i.Pc, api, CallSiteShape.ViaThunk | CallSiteShape.TailCall, Args(s), f.Start));
                    else edges.Add(new Edge((uint)i.Pc, target, true, Args(s), f.Start));
                    return;
                }
            case A64Kind.Mrs:
                Write(s, i.Rd, V.Unknown, true);
                return;
            case A64Kind.Other:
                for (var r = 0; r < 31; r++)
                    if ((i.Clobbers & (1u << r)) != 0) s.Regs[r] = V.Unknown;
                // Add/subtract (extended register) may write SP (Rd 31).
                if ((i.Word & 0x1F) == 31 && (i.Word & 0x1F20_0000) == 0x0B20_0000) SetBase(s, 31, V.Unknown);
                if (f.Escapes && IsStore(i.Word)) s.Slots.Clear();
                return;
            default:
                return;
        }
    }

    // Loads and stores class (op0 = x1x0) with the L bit clear for the forms that have one: may write memory.
    private static bool IsStore(uint w) => (w & 0x0A00_0000) == 0x0800_0000 && ((w >> 22) & 1) == 0;

    private static ulong Mask(ulong v, bool is64) => is64 ? v : v & 0xFFFF_FFFF;

    private static V[] Args(State s)
    {
        var a = new V[8];
        Array.Copy(s.Regs, a, 8);
        return a;
    }

    /// <summary>The callee may change x0..x17 and x30 (x18 is the platform register); slots escape with the frame.</summary>
    private static void Call(Function f, State s)
    {
        for (var r = 0; r <= 17; r++) s.Regs[r] = V.Unknown;
        s.Regs[30] = V.Unknown;
        if (f.Escapes) s.Slots.Clear();
    }

    private V LoadFrom(State s, V at, int size, bool signed, bool is64)
    {
        if (at.Is(K.Sp))
        {
            foreach (var slot in s.Slots)
                if (slot.Offset == (long)at.X && slot.Size >= size)
                {
                    if (slot.Size == size) return slot.Value;
                    return slot.Value.Is(K.Const) ? V.Const(Extend(slot.Value.X, size, signed, is64)) : size == 4 ? Narrow(slot.Value) : V.Unknown;
                }
            return V.Unknown;
        }
        if (at.Is(K.Addr))
        {
            var rva = (uint)at.X;
            TakeAddress(rva);
            if (size == 8 && _slots.ContainsKey(rva)) return new V(K.Import, rva);
            return ReadOnlyValue(rva, size, signed, is64);
        }
        return V.Unknown;
    }

    private void StoreTo(Function f, State s, V at, int size, V value)
    {
        if (at.Is(K.Sp))
        {
            var off = (long)at.X;
            for (var n = s.Slots.Count - 1; n >= 0; n--)
                if (s.Slots[n].Offset < off + size && off < s.Slots[n].Offset + s.Slots[n].Size) s.Slots.RemoveAt(n);
            if (s.Slots.Count < TrackedSlots) s.Slots.Add(new Slot(off, size, size >= 8 ? value : value.Kind is K.Const ? V.Const(Extend(value.X, size, false, false)) : value.Is(K.Param) && size == 4 ? value : V.Unknown));
            return;
        }
        if (at.Is(K.Addr)) { TakeAddress((uint)at.X); return; }
        if (f.Escapes || !s.Sp.Is(K.Sp)) s.Slots.Clear();
    }

    private static ulong Extend(ulong v, int size, bool signed, bool is64)
    {
        var bits = size * 8;
        var m = bits >= 64 ? v : v & ((1UL << bits) - 1);
        if (signed && bits < 64 && ((m >> (bits - 1)) & 1) != 0) m |= ulong.MaxValue << bits;
        return Mask(m, is64);
    }

    /// <summary>A value read from a section that is not writable (literal pools, read-only data): a constant; otherwise unknown.</summary>
    private V ReadOnlyValue(uint rva, int size, bool signed, bool is64)
    {
        var section = _image.FindSection(rva);
        if (section is null || (section.Characteristics & PeSection.MemWrite) != 0 || size is not (1 or 2 or 4 or 8)) return V.Unknown;
        Span<byte> b = stackalloc byte[8];
        b.Clear();
        if (_image.ReadRva(rva, b[..size]) != size) return V.Unknown;
        return V.Const(Extend(BinaryPrimitives.ReadUInt64LittleEndian(b), size, signed, is64));
    }

    private void TakeAddress(uint rva, bool seed = false)
    {
        if (rva >= _image.SizeOfImage) return;
        _references.Add(rva);
        // A code address the code computes (a dispatch routine stored into the DRIVER_OBJECT) is a function; an
        // address it only reads from (a literal pool) is not.
        if (seed && (rva & 3) == 0 && FindSection(rva) is not null && !InsideKnownBlock(rva)) Seed(rva, weak: true);
    }

    // ------------------------------------------------------------------ results

    private void Resolve()
    {
        _rawSites.Sort((a, b) => a.Site != b.Site ? a.Site.CompareTo(b.Site) : string.CompareOrdinal(a.Api.Key, b.Api.Key));
        var sites = new List<CallSite>(_rawSites.Count);
        var seen = new HashSet<(uint, string)>();
        var raw = new List<RawSite>();
        foreach (var r in _rawSites)
        {
            if (!seen.Add((r.Site, r.Api.Key))) continue;
            sites.Add(new CallSite(r.Api, r.Site, r.Function, ToArgs(r.Args), r.Shape));
            raw.Add(r);
        }
        CallSites = sites;
        Wrapped = TraceWrappers(sites, raw);
    }

    private static ArgValue[] ToArgs(V[] regs)
    {
        var a = new ArgValue[CallSite.TrackedArgs];
        for (var n = 0; n < a.Length; n++) a[n] = regs[n].Is(K.Const) ? ArgValue.Known(regs[n].X) : ArgValue.Unknown;
        return a;
    }

    // ------------------------------------------------------------------ wrappers

    private Dictionary<uint, List<Edge>>? _callers;

    private List<WrappedCall> TraceWrappers(List<CallSite> sites, List<RawSite> raw)
    {
        var results = new List<WrappedCall>();
        _callers = [];
        foreach (var e in _edges)
        {
            if (!_callers.TryGetValue(e.Target, out var list)) _callers[e.Target] = list = [];
            if (list.Count < WrapperTracer.MaxCallers && !list.Any(x => x.Site == e.Site)) list.Add(e);
        }
        for (var n = 0; n < sites.Count && results.Count < WrapperTracer.MaxResults; n++)
        {
            var site = sites[n];
            if (PoolApis.Find(site.Api.Ref) is not { } signature) continue;
            var pieces = new Dictionary<int, V>();
            foreach (var a in (ReadOnlySpan<int>)[signature.TagArg, signature.PoolTypeArg, signature.PoolFlagsArg])
                if (a >= 0 && a < CallSite.TrackedArgs && !site.Arg(a).IsKnown && raw[n].Args[a].Is(K.Param)) pieces[a] = raw[n].Args[a];
            if (pieces.Count == 0) continue;
            Follow(site, raw[n].Function, pieces, [], 1, results);
        }
        return results;
    }

    private void Follow(CallSite site, uint wrapper, Dictionary<int, V> pieces, List<WrapperHop> chain, int depth, List<WrappedCall> results)
    {
        if (!_callers!.TryGetValue(wrapper, out var callers) || callers.Count == 0)
        {
            if (chain.Count > 0) Emit(site, pieces, chain, null, results);
            return;
        }
        foreach (var c in callers)
        {
            if (results.Count >= WrapperTracer.MaxResults) return;
            var next = new Dictionary<int, V>(pieces.Count);
            var open = false;
            foreach (var (a, v) in pieces)
            {
                var value = v.Is(K.Param) && v.X < 8 ? c.Args[v.X] : v;
                if (value.Kind is not (K.Const or K.Param)) value = V.Unknown;
                next[a] = value;
                open |= value.Is(K.Param);
            }
            var longer = new List<WrapperHop>(chain.Count + 1) { new(c.Site, wrapper) };
            longer.AddRange(chain);
            if (open && depth < WrapperTracer.MaxDepth && c.Caller != wrapper && !chain.Any(h => h.WrapperRva == c.Caller))
                Follow(site, c.Caller, next, longer, depth + 1, results);
            else
                Emit(site, next, longer, c.Caller, results);
        }
    }

    private static void Emit(CallSite site, Dictionary<int, V> pieces, List<WrapperHop> chain, uint? caller, List<WrappedCall> results)
    {
        var args = new ArgValue[CallSite.TrackedArgs];
        for (var a = 0; a < args.Length; a++) args[a] = site.Arg(a);
        foreach (var (a, v) in pieces) args[a] = v.Is(K.Const) ? ArgValue.Known(v.X) : ArgValue.Unknown;
        results.Add(new WrappedCall(site, chain, args, caller));
    }
}
