using System.Buffers.Binary;
using DriverAudit.Rules.Facts;
using DriverAudit.Rules.Kernel;
using Iced.Intel;

namespace DriverAudit.Scanner.Code;

/// <summary>
/// A pool call whose tag, pool type or flags come from the driver's own wrapper function's parameters, with
/// those arguments as the outermost caller passes them.
/// </summary>
/// <param name="Site">The allocator (or free) call inside the innermost wrapper.</param>
/// <param name="Via">Outermost caller first: each call into the next wrapper, the last one into the wrapper holding <paramref name="Site"/>.</param>
/// <param name="Args">The API's arguments 0..3: the caller's constants where the wrapper passed its parameters on, the site's own elsewhere.</param>
/// <param name="CallerFunction">Start of the function holding the outermost call, when known.</param>
internal sealed record WrappedCall(CallSite Site, IReadOnlyList<WrapperHop> Via, IReadOnlyList<ArgValue> Args, uint? CallerFunction)
{
    public uint CallerSiteRva => Via.Count > 0 ? Via[0].CallRva : Site.SiteRva;
}

/// <summary>
/// Follows pool arguments through a driver's own wrappers: when the tag (or pool type, or flags) an allocator
/// call receives is provably the containing function's incoming parameter, the value each direct caller of that
/// function passes is recovered instead, through up to <see cref="MaxDepth"/> wrapper levels. A parameter is
/// proven by a forward data-flow pass over the wrapper from its entry to the call (registers and stack slots
/// hold a constant, "parameter j" or nothing; paths merge at branch targets; a loop back makes everything
/// unknown). Whatever is not proven stays unknown: a caller passing a global, a wrapper whose start or callers
/// cannot be found, a value changed on the way.
/// </summary>
internal sealed class WrapperTracer
{
    /// <summary>Wrapper levels followed from the allocator call outwards.</summary>
    public const int MaxDepth = 4;
    /// <summary>A wrapper is analysed from its entry to the call only when they are at most this far apart.</summary>
    public const int MaxFunctionBytes = 64 << 10;
    /// <summary>Direct callers followed per wrapper, and chains reported per image: bounds on hostile images.</summary>
    public const int MaxCallers = 1024, MaxResults = 1 << 16;
    private const int X86Units = 8;
    /// <summary>Bytes decoded past a site (when the function's end is unknown) to find loops closing after it.</summary>
    private const int LoopLookahead = 4096;

    private readonly CodeImage _code;
    private readonly RegionDecoder _decoder;
    private readonly IReadOnlyList<CallSite> _sites;
    private readonly uint _entryPoint;
    private readonly Dictionary<uint, PoolApi?> _calleeByRva = [];
    // Direct call/jump rel32 (and short jmp) sources by target, from one byte scan; verified on use.
    private Dictionary<uint, List<uint>>? _branchesTo;
    private uint[]? _callTargets;
    private readonly Dictionary<uint, List<(uint Rva, bool Tail)>> _verifiedCallers = [];
    private readonly Dictionary<uint, uint?> _functionOf = [];
    private readonly List<WrappedCall> _results = [];

    public WrapperTracer(CodeImage code, IReadOnlyList<CallSite> sites, uint entryPoint)
    {
        _code = code;
        _decoder = new RegionDecoder(code);
        _sites = sites;
        _entryPoint = entryPoint;
        foreach (var s in sites) _calleeByRva.TryAdd(s.SiteRva, PoolApis.Find(s.Api.Ref));
    }

    public List<WrappedCall> Trace()
    {
        try
        {
            foreach (var site in _sites)
            {
                if (_results.Count >= MaxResults) break;
                if (PoolApis.Find(site.Api.Ref) is not { } signature) continue;
                var wanted = Wanted(site, signature);
                if (wanted.Count == 0) continue;
                TraceSite(site, signature, wanted);
            }
            foreach (var (site, signature) in ShortJumpsToThunks())
            {
                if (_results.Count >= MaxResults) break;
                var before = _results.Count;
                var wanted = Wanted(site, signature);
                if (wanted.Count > 0) TraceSite(site, signature, wanted);
                if (_results.Count == before) _results.Add(new WrappedCall(site, [], site.Args, site.FunctionStartRva));
            }
            return _results;
        }
        finally
        {
            _decoder.Release();
        }
    }

    /// <summary>
    /// Jumps to an import thunk the call-site finder does not look for (a short <c>jmp rel8</c>, the tail call of a
    /// wrapper that lies just before the thunk): new sites of the thunk's API, with their constants. Thunks are
    /// known from the thunk-shaped sites already found.
    /// </summary>
    private List<(CallSite Site, PoolApi Signature)> ShortJumpsToThunks()
    {
        var thunks = new Dictionary<uint, ImportFact>();
        var known = new HashSet<uint>();
        foreach (var site in _sites)
        {
            known.Add(site.SiteRva);
            if ((site.Shape & CallSiteShape.ViaThunk) == 0 || PoolApis.Find(site.Api.Ref) is null) continue;
            if (!Locate(site.SiteRva, out var region, out var k)) continue;
            if (CodeRegion.IsDirectBranch(region[k])) thunks.TryAdd((uint)region[k].NearBranchTarget, site.Api);
        }
        var extra = new List<(CallSite, PoolApi)>();
        foreach (var (thunk, api) in thunks)
        {
            var signature = PoolApis.Find(api.Ref)!;
            foreach (var (rva, tail) in CallersOf(thunk))
            {
                if (known.Contains(rva)) continue;
                var args = CallerConstants(rva, tail, signature);
                var shape = CallSiteShape.ViaThunk | (tail ? CallSiteShape.TailCall : 0);
                extra.Add((new CallSite(api, rva, FunctionOf(rva), args.Length == 0 ? new ArgValue[CallSite.TrackedArgs] : args, shape), signature));
            }
        }
        return extra;
    }

    /// <summary>The pool arguments of the site that are not constants: the ones worth following.</summary>
    private static List<int> Wanted(CallSite site, PoolApi signature)
    {
        var wanted = new List<int>(3);
        foreach (var a in (ReadOnlySpan<int>)[signature.TagArg, signature.PoolTypeArg, signature.PoolFlagsArg])
            if (a >= 0 && a < CallSite.TrackedArgs && !site.Arg(a).IsKnown) wanted.Add(a);
        return wanted;
    }

    private void TraceSite(CallSite site, PoolApi signature, List<int> wanted)
    {
        if (FunctionOf(site.SiteRva) is not { } function) return;
        var tail = (site.Shape & CallSiteShape.TailCall) != 0;
        if (UnitsAt(function, site.SiteRva, tail) is not { } units) return;
        // Per wanted argument, the units (x64: one register; x86: its stack dwords) as the wrapper's entry sees them.
        var pieces = new Dictionary<int, Sym[]>();
        var anyParam = false;
        foreach (var a in wanted)
        {
            if (UnitsOf(signature, a) is not { } range) continue;
            var p = units.AsSpan(range.Start, range.Count).ToArray();
            pieces[a] = p;
            anyParam |= p.Any(u => u.IsParam);
        }
        if (!anyParam) return;
        Resolve(site, signature, function, pieces, [], depth: 1);
    }

    private void Resolve(CallSite site, PoolApi signature, uint wrapper, Dictionary<int, Sym[]> pieces, List<WrapperHop> chain, int depth)
    {
        var callers = CallersOf(wrapper);
        if (callers.Count == 0)
        {
            if (chain.Count > 0) Emit(site, signature, pieces, chain, null);
            return;
        }
        foreach (var (callRva, tail) in callers)
        {
            if (_results.Count >= MaxResults) return;
            var hop = new WrapperHop(callRva, wrapper);
            var caller = FunctionOf(callRva);
            var constants = CallerConstants(callRva, tail, null);
            Sym[]? symbolic = null;
            var next = new Dictionary<int, Sym[]>(pieces.Count);
            var open = false;
            foreach (var (a, units) in pieces)
            {
                var resolved = new Sym[units.Length];
                for (var u = 0; u < units.Length; u++)
                {
                    var unit = units[u];
                    if (!unit.IsParam) { resolved[u] = unit; continue; }
                    var j = unit.Param;
                    var value = j < constants.Length && constants[j].IsKnown ? Sym.Const(constants[j].Value) : Sym.Unknown;
                    if (!value.IsConst && depth < MaxDepth && caller is { } g)
                    {
                        symbolic ??= UnitsAt(g, callRva, tail) ?? [];
                        if (j < symbolic.Length) value = symbolic[j];
                    }
                    resolved[u] = value.Narrow(unit.Size);
                    open |= resolved[u].IsParam;
                }
                next[a] = resolved;
            }
            var longer = new List<WrapperHop>(chain.Count + 1) { hop };
            longer.AddRange(chain);
            // A caller that is itself a wrapper already on the chain would loop: its parameters stay unknown.
            if (open && caller is { } outer && depth < MaxDepth && outer != wrapper && !chain.Any(h => h.WrapperRva == outer))
                Resolve(site, signature, outer, next, longer, depth + 1);
            else
                Emit(site, signature, next, longer, caller);
        }
    }

    private void Emit(CallSite site, PoolApi signature, Dictionary<int, Sym[]> pieces, List<WrapperHop> chain, uint? callerFunction)
    {
        var args = new ArgValue[CallSite.TrackedArgs];
        for (var a = 0; a < args.Length; a++) args[a] = site.Arg(a);
        foreach (var (a, units) in pieces)
        {
            ulong value = 0;
            var known = true;
            for (var u = 0; u < units.Length && known; u++)
            {
                // x64: one register; x86: little-endian dwords.
                if (units[u].IsConst) value |= _code.Is64 ? units[u].Value : (units[u].Value & 0xFFFF_FFFF) << (32 * u);
                else known = false;
            }
            var size = a < signature.ArgCount ? signature.ArgSizes[a] : 8;
            args[a] = known ? ArgValue.Known(size >= 8 ? value : value & ((1UL << (8 * size)) - 1)) : ArgValue.Unknown;
        }
        _results.Add(new WrappedCall(site, [.. chain], args, callerFunction));
    }

    /// <summary>Which units hold argument <paramref name="a"/>: x64 its register, x86 the stack dwords it spans.</summary>
    private (int Start, int Count)? UnitsOf(PoolApi signature, int a)
    {
        if (_code.Is64) return a < 4 ? (a, 1) : null;
        var offset = 0;
        for (var k = 0; k < a; k++) offset += signature.ArgSizes[k];
        var count = Math.Max(1, signature.ArgSizes[a] / 4);
        return offset / 4 + count <= X86Units ? (offset / 4, count) : null;
    }

    // ------------------------------------------------------------------ callers and functions

    /// <summary>Arguments 0..3 at a call as straight-line constant recovery proves them (no function start needed).</summary>
    /// <param name="signature">The callee's, for x86 argument sizes; null for a wrapper (every argument a dword).</param>
    private ArgValue[] CallerConstants(uint callRva, bool tail, PoolApi? signature)
    {
        if (!Locate(callRva, out var region, out var index)) return [];
        var request = new ArgumentRecovery.Request(region, index, tail, signature);
        return ArgumentRecovery.RecoverAll([request], _code.Is64, rva => _calleeByRva.GetValueOrDefault(rva))[0];
    }

    /// <summary>The decoded instruction starting exactly at <paramref name="rva"/> (which proves it is one).</summary>
    private bool Locate(uint rva, out CodeRegion region, out int index)
    {
        region = _decoder.RegionFor(rva)!;
        index = region?.IndexOf(rva) ?? -1;
        return index >= 0;
    }

    /// <summary>Units at a call inside the function starting at <paramref name="function"/>, or null when it cannot be analysed.</summary>
    private Sym[]? UnitsAt(uint function, uint site, bool tail)
    {
        if (site < function || site - function > MaxFunctionBytes) return null;
        // Past the site too: a loop closing after the call makes the values at its head unknown.
        var region = _decoder.Forward(function, (int)(site - function) + LoopLookahead);
        if (region is null || region.Count == 0 || region[0].IP != function) return null;
        var index = region.IndexOf(site);
        if (index < 0) return null;
        return new ParamFlow(_code.Is64, region, rva => _calleeByRva.GetValueOrDefault(rva)).UnitsAt(index, tail);
    }

    /// <summary>Verified direct calls and jumps to <paramref name="target"/>: (site, is a tail jump).</summary>
    private List<(uint Rva, bool Tail)> CallersOf(uint target)
    {
        if (_verifiedCallers.TryGetValue(target, out var known)) return known;
        var list = new List<(uint, bool)>();
        if (Branches().TryGetValue(target, out var sources))
            foreach (var source in sources)
            {
                if (list.Count >= MaxCallers) break;
                if (!Locate(source, out var region, out var k)) continue;
                ref readonly var i = ref region[k];
                if (!CodeRegion.IsDirectBranch(i) || i.NearBranchTarget != target) continue;
                if (i.Mnemonic == Mnemonic.Call) list.Add((source, false));
                else if (i.Mnemonic == Mnemonic.Jmp) list.Add((source, true));
            }
        return _verifiedCallers[target] = list;
    }

    /// <summary>
    /// The start of the function holding <paramref name="rva"/>: the x64 function table's entry, else (x86 has
    /// none) the nearest verified call target or the entry point at or before it.
    /// </summary>
    private uint? FunctionOf(uint rva)
    {
        if (_functionOf.TryGetValue(rva, out var cached)) return cached;
        uint? result = null;
        if (_code.Functions.Count > 0) result = _code.Functions.Find(rva)?.Begin;
        else
        {
            var targets = CallTargets();
            var at = Array.BinarySearch(targets, rva);
            if (at < 0) at = ~at - 1;
            for (var n = 0; at >= 0 && n < 8; at--, n++)
            {
                var f = targets[at];
                if (rva - f > MaxFunctionBytes) break;
                if (f == _entryPoint || CallersOf(f).Any(c => !c.Tail)) { result = f; break; }
            }
        }
        return _functionOf[rva] = result;
    }

    private uint[] CallTargets()
    {
        if (_callTargets is not null) return _callTargets;
        var set = new HashSet<uint>();
        foreach (var (target, sources) in Branches())
            if (sources.Count > 0) set.Add(target);
        if (_code.FindSection(_entryPoint) is not null) set.Add(_entryPoint);
        var array = set.ToArray();
        Array.Sort(array);
        return _callTargets = array;
    }

    /// <summary>One pass over the code: every E8/E9 rel32 and EB rel8 whose target is executable code.</summary>
    private Dictionary<uint, List<uint>> Branches()
    {
        if (_branchesTo is not null) return _branchesTo;
        var map = new Dictionary<uint, List<uint>>();
        foreach (var section in _code.Sections)
        {
            var bytes = section.Bytes;
            for (var p = 0; p + 2 <= bytes.Length; p++)
            {
                var next = bytes.AsSpan(p, bytes.Length - 1 - p).IndexOfAny((byte)0xE8, (byte)0xE9, (byte)0xEB);
                if (next < 0) break;
                p += next;
                var rva = section.Rva + (uint)p;
                uint target;
                if (bytes[p] == 0xEB) target = (uint)(rva + 2 + (sbyte)bytes[p + 1]);
                else if (p + 5 <= bytes.Length) target = (uint)(rva + 5 + BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(p + 1)));
                else continue;
                if (target == rva || _code.FindSection(target) is null) continue;
                if (!map.TryGetValue(target, out var list)) map[target] = list = [];
                if (list.Count < MaxCallers * 4) list.Add(rva);
            }
        }
        return _branchesTo = map;
    }
}

/// <summary>A value in <see cref="ParamFlow"/>: unknown, a constant, or the low <see cref="Size"/> bytes of incoming parameter <see cref="Param"/>.</summary>
internal readonly record struct Sym(byte Kind, int Param, int Size, ulong Value)
{
    public static Sym Unknown => default;
    public static Sym Const(ulong v) => new(1, 0, 8, v);
    public static Sym Parameter(int j, int size) => new(2, j, size, 0);
    public bool IsConst => Kind == 1;
    public bool IsParam => Kind == 2;

    /// <summary>The low <paramref name="size"/> bytes (a 32-bit register write, a narrower load).</summary>
    public Sym Narrow(int size) => Kind switch
    {
        1 => Const(size >= 8 ? Value : Value & ((1UL << (8 * size)) - 1)),
        2 => Parameter(Param, Math.Min(Size, size)),
        _ => Unknown,
    };
}

/// <summary>
/// Forward data flow over one function from its entry: which registers and stack slots hold an incoming
/// parameter (x64: rcx, rdx, r8, r9; x86: the stack dwords above the return address) or a constant.
/// Instructions are visited in address order; the state at a branch target is the merge of the fall-through
/// and every forward branch to it; a target also reached by a backward branch starts from nothing known.
/// </summary>
internal sealed class ParamFlow(bool is64, CodeRegion region, Func<uint, PoolApi?> calleeOf)
{
    private static readonly Register[] X64Args = [Register.RCX, Register.RDX, Register.R8, Register.R9];
    private static readonly Register[] X64Volatile = [Register.RAX, Register.RCX, Register.RDX, Register.R8, Register.R9, Register.R10, Register.R11];
    private static readonly Register[] X86Volatile = [Register.RAX, Register.RCX, Register.RDX];
    private readonly InstructionInfoFactory _info = new();

    private sealed class State
    {
        public readonly Sym[] Regs = new Sym[16];
        public long? Sp = 0;
        public long? Bp;
        public readonly Dictionary<long, (int Size, Sym Value)> Slots = [];

        public State Clone()
        {
            var s = new State { Sp = Sp, Bp = Bp };
            Array.Copy(Regs, s.Regs, 16);
            foreach (var kv in Slots) s.Slots[kv.Key] = kv.Value;
            return s;
        }

        public void MergeFrom(State o)
        {
            for (var r = 0; r < 16; r++) if (Regs[r] != o.Regs[r]) Regs[r] = Sym.Unknown;
            if (Sp != o.Sp) Sp = null;
            if (Bp != o.Bp) Bp = null;
            foreach (var key in Slots.Keys.ToList())
                if (!o.Slots.TryGetValue(key, out var v) || v != Slots[key]) Slots.Remove(key);
        }
    }

    /// <summary>Units at instruction <paramref name="site"/>: x64 the four argument registers, x86 eight stack dwords.</summary>
    public Sym[] UnitsAt(int site, bool tail)
    {
        var backTargets = new HashSet<int>();
        for (var k = 0; k < region.Count; k++)
        {
            ref readonly var i = ref region[k];
            if (CodeRegion.IsDirectBranch(i) && i.Mnemonic != Mnemonic.Call && region.IndexOf((uint)i.NearBranchTarget) is var t and >= 0 && t <= k)
                backTargets.Add(t);
        }
        var pending = new Dictionary<int, State>();
        State? state = Entry();
        var escapes = region.StackEscapes;
        for (var k = 0; k < site; k++)
        {
            if (region.IsLabelAt(k) || pending.ContainsKey(k))
            {
                if (backTargets.Contains(k)) state = new State { Sp = null, Bp = null };
                else if (pending.Remove(k, out var incoming))
                {
                    if (state is null) state = incoming; else state.MergeFrom(incoming);
                }
                else if (region.IsLabelAt(k) && k > 0) { /* target of a branch not seen reachable: fall-through only */ }
            }
            if (state is null) continue;
            ref readonly var i = ref region[k];
            var flow = i.FlowControl;
            if (flow is FlowControl.ConditionalBranch or FlowControl.UnconditionalBranch && CodeRegion.IsDirectBranch(i))
            {
                var t = region.IndexOf((uint)i.NearBranchTarget);
                if (t > k)
                {
                    if (pending.TryGetValue(t, out var p)) p.MergeFrom(state); else pending[t] = state.Clone();
                }
                if (flow == FlowControl.UnconditionalBranch) state = null;
                continue;
            }
            if (flow is FlowControl.Return or FlowControl.IndirectBranch or FlowControl.Interrupt or FlowControl.Exception or FlowControl.UnconditionalBranch)
            {
                state = null;
                continue;
            }
            Step(state, i, escapes);
        }
        if (region.IsLabelAt(site) || pending.ContainsKey(site))
        {
            if (backTargets.Contains(site)) state = null;
            else if (pending.Remove(site, out var incoming)) { if (state is null) state = incoming; else state.MergeFrom(incoming); }
        }
        var units = new Sym[is64 ? 4 : 8];
        if (state is null) return units;
        if (is64)
        {
            for (var u = 0; u < 4; u++) units[u] = state.Regs[X64Args[u] - Register.RAX];
            return units;
        }
        if (state.Sp is not { } sp) return units;
        var at = sp + (tail ? 4 : 0);
        for (var u = 0; u < units.Length; u++) units[u] = Read(state, at + 4 * u, 4);
        return units;
    }

    private State Entry()
    {
        var s = new State();
        if (is64)
            for (var j = 0; j < 4; j++) s.Regs[X64Args[j] - Register.RAX] = Sym.Parameter(j, 8);
        else
            for (var j = 0; j < 8; j++) s.Slots[4 + 4 * j] = (4, Sym.Parameter(j, 4));
        return s;
    }

    private void Step(State s, in Instruction i, bool escapes)
    {
        switch (i.Mnemonic)
        {
            case Mnemonic.Nop:
                return;
            case Mnemonic.Call:
                Call(s, i, escapes);
                return;
            case Mnemonic.Push when i.OpCount == 1:
                {
                    var size = i.StackPointerIncrement < 0 ? -i.StackPointerIncrement : is64 ? 8 : 4;
                    var v = i.Op0Kind switch
                    {
                        OpKind.Register => Reg(s, i.Op0Register),
                        OpKind.Memory => Load(s, i, size),
                        _ => IsImmediate(i.Op0Kind) ? Sym.Const(i.GetImmediate(0)).Narrow(size) : Sym.Unknown,
                    };
                    if (s.Sp is { } sp) { s.Sp = sp - size; Store(s, sp - size, size, v); }
                    return;
                }
            case Mnemonic.Pop when i.OpCount == 1 && i.Op0Kind == OpKind.Register && i.Op0Register.IsGPR():
                {
                    var size = i.Op0Register.GetSize();
                    var v = s.Sp is { } sp ? Read(s, sp, size) : Sym.Unknown;
                    s.Sp = s.Sp + size;
                    SetReg(s, i.Op0Register, v);
                    return;
                }
            case Mnemonic.Leave:
                s.Sp = s.Bp + (is64 ? 8 : 4);
                s.Bp = null;
                return;
            case Mnemonic.Mov when i.OpCount == 2 && i.Op0Kind == OpKind.Register && i.Op0Register.IsGPR():
                {
                    var dst = i.Op0Register.GetFullRegister();
                    if (i.Op1Kind == OpKind.Register && i.Op1Register.GetFullRegister() == Register.RSP && dst == Register.RBP) { s.Bp = s.Sp; return; }
                    if (i.Op1Kind == OpKind.Register && i.Op1Register.GetFullRegister() == Register.RBP && dst == Register.RSP) { s.Sp = s.Bp; return; }
                    var size = i.Op0Register.GetSize();
                    var v = i.Op1Kind switch
                    {
                        OpKind.Register => Reg(s, i.Op1Register),
                        OpKind.Memory => Load(s, i, size),
                        _ => IsImmediate(i.Op1Kind) ? Sym.Const(i.GetImmediate(1)) : Sym.Unknown,
                    };
                    SetReg(s, i.Op0Register, v.Narrow(size));
                    return;
                }
            case Mnemonic.Mov when i.OpCount == 2 && i.Op0Kind == OpKind.Memory:
                {
                    var size = i.MemorySize.GetSize();
                    var v = i.Op1Kind == OpKind.Register ? Reg(s, i.Op1Register).Narrow(size)
                        : IsImmediate(i.Op1Kind) ? Sym.Const(i.GetImmediate(1)).Narrow(size) : Sym.Unknown;
                    if (StackOffset(s, i) is { } at) Store(s, at, size, v);
                    else Clobber(s, i, escapes);
                    return;
                }
            case Mnemonic.Movzx when i.Op0Kind == OpKind.Register && i.Op0Register.IsGPR():
                {
                    var srcSize = i.Op1Kind == OpKind.Register ? i.Op1Register.GetSize() : i.MemorySize.GetSize();
                    var v = i.Op1Kind == OpKind.Register ? Reg(s, i.Op1Register) : Load(s, i, srcSize);
                    SetReg(s, i.Op0Register, v.Narrow(srcSize));
                    return;
                }
            case Mnemonic.Xor or Mnemonic.Sub when i.Op0Kind == OpKind.Register && i.Op1Kind == OpKind.Register
                                                  && i.Op0Register == i.Op1Register && i.Op0Register.IsGPR()
                                                  && i.Op0Register.GetFullRegister() is not (Register.RSP or Register.RBP):
                SetReg(s, i.Op0Register, Sym.Const(0));
                return;
            case Mnemonic.Add or Mnemonic.Sub when i.Op0Kind == OpKind.Register && IsImmediate(i.Op1Kind)
                                                  && i.Op0Register.GetFullRegister() is Register.RSP or Register.RBP:
                {
                    var delta = (long)i.GetImmediate(1) * (i.Mnemonic == Mnemonic.Add ? 1 : -1);
                    if (i.Op0Register.GetFullRegister() == Register.RSP) s.Sp += delta; else s.Bp += delta;
                    return;
                }
            case Mnemonic.Lea when i.Op0Kind == OpKind.Register && i.Op0Register.GetFullRegister() == Register.RSP
                                   && i.MemoryIndex == Register.None && i.MemoryBase.GetFullRegister() is Register.RSP or Register.RBP:
                s.Sp = (i.MemoryBase.GetFullRegister() == Register.RSP ? s.Sp : s.Bp) + (long)i.MemoryDisplacement64;
                return;
        }
        Generic(s, i, escapes);
    }

    /// <summary>Anything not modelled: whatever it writes becomes unknown.</summary>
    private void Generic(State s, in Instruction i, bool escapes)
    {
        var info = _info.GetInfo(i);
        foreach (var r in info.GetUsedRegisters())
        {
            if (!CodeRegion.IsWrite(r.Access) || !r.Register.IsGPR()) continue;
            var full = r.Register.GetFullRegister();
            if (full == Register.RSP) s.Sp = null;
            else if (full == Register.RBP) s.Bp = null;
            else s.Regs[full - Register.RAX] = Sym.Unknown;
        }
        foreach (var m in info.GetUsedMemory())
        {
            if (!CodeRegion.IsWrite(m.Access)) continue;
            var at = m.Index == Register.None ? Frame(s, m.Base) + (long)m.Displacement : null;
            if (at is { } a) Kill(s, a, Math.Max(1, m.MemorySize.GetSize()));
            else if (m.Base.GetFullRegister() is Register.RSP or Register.RBP || (escapes && m.Base is not (Register.RIP or Register.EIP or Register.None)))
                s.Slots.Clear();
        }
    }

    private void Call(State s, in Instruction i, bool escapes)
    {
        // The callee may write its own arguments' area and, when the frame's address escaped, any slot.
        if (escapes) s.Slots.Clear();
        else if (s.Sp is { } sp)
            foreach (var key in s.Slots.Keys.Where(k => k < sp + (is64 ? 0x20 : 0)).ToList()) s.Slots.Remove(key);
        else s.Slots.Clear();
        foreach (var r in is64 ? X64Volatile : X86Volatile) s.Regs[r - Register.RAX] = Sym.Unknown;
        if (!is64)
        {
            // stdcall kernel APIs pop their arguments; another callee may or may not.
            if (calleeOf((uint)i.IP) is { } api) s.Sp += api.ArgSizes.Sum();
            else s.Sp = null;
        }
    }

    private static Sym Reg(State s, Register r)
    {
        if (!r.IsGPR()) return Sym.Unknown;
        var full = r.GetFullRegister();
        if (full is Register.RSP or Register.RBP) return Sym.Unknown;
        if (r is Register.AH or Register.BH or Register.CH or Register.DH) return Sym.Unknown;
        return s.Regs[full - Register.RAX].Narrow(r.GetSize());
    }

    private static void SetReg(State s, Register r, Sym v)
    {
        var full = r.GetFullRegister();
        if (full == Register.RSP) { s.Sp = null; return; }
        if (full == Register.RBP) { s.Bp = null; return; }
        // 32- and 64-bit writes replace the register (32-bit ones zero-extend); narrower ones merge: unknown.
        s.Regs[full - Register.RAX] = r.GetSize() >= 4 ? v.Narrow(r.GetSize()) : Sym.Unknown;
    }

    private long? Frame(State s, Register baseReg) => baseReg.GetFullRegister() switch
    {
        Register.RSP => s.Sp,
        Register.RBP => s.Bp,
        _ => null,
    };

    private long? StackOffset(State s, in Instruction i) =>
        i.IsIPRelativeMemoryOperand || i.MemoryIndex != Register.None ? null : Frame(s, i.MemoryBase) + (long)i.MemoryDisplacement64;

    private Sym Load(State s, in Instruction i, int size) => StackOffset(s, i) is { } at ? Read(s, at, size) : Sym.Unknown;

    private static Sym Read(State s, long at, int size) =>
        s.Slots.TryGetValue(at, out var slot) && slot.Size >= size ? slot.Value.Narrow(size) : Sym.Unknown;

    private static void Store(State s, long at, int size, Sym v)
    {
        Kill(s, at, size);
        if (v.Kind != 0 && size is 1 or 2 or 4 or 8) s.Slots[at] = (size, v.Narrow(size));
    }

    private static void Kill(State s, long at, int size)
    {
        foreach (var (key, slot) in s.Slots.ToList())
            if (key < at + size && at < key + slot.Size) s.Slots.Remove(key);
    }

    private void Clobber(State s, in Instruction i, bool escapes)
    {
        if (i.IsIPRelativeMemoryOperand || (i.MemoryBase == Register.None && i.MemoryIndex == Register.None)) return; // a global
        if (i.MemoryBase.GetFullRegister() is Register.RSP or Register.RBP || escapes) s.Slots.Clear();
    }

    private static bool IsImmediate(OpKind k) => k is OpKind.Immediate8 or OpKind.Immediate16 or OpKind.Immediate32 or OpKind.Immediate64
        or OpKind.Immediate8to16 or OpKind.Immediate8to32 or OpKind.Immediate8to64 or OpKind.Immediate32to64;
}
