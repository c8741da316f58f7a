using System.Buffers.Binary;
using DriverAudit.Rules.Facts;
using DriverAudit.Rules.Kernel;
using Iced.Intel;

namespace DriverAudit.Scanner.Code;

/// <summary>
/// Finds the call sites of imported functions without disassembling whole images: a byte scan of the executable
/// sections finds the encodings that can reference an IAT slot, and only the code around those candidates is
/// decoded (which also proves the candidate is a real instruction boundary and not bytes inside another one).
/// Shapes: <c>call [slot]</c>; <c>mov reg, [slot]</c> … <c>call reg</c> (register reused for several calls); and
/// <c>jmp [slot]</c>, either an import thunk (then its direct callers are the sites) or a tail call.
/// </summary>
internal sealed class CallSiteFinder
{
    /// <summary>How far past a <c>mov reg, [slot]</c> a register is followed when the function end is unknown.</summary>
    public const int RegisterFollowBytes = 4096;
    private const int MaxBranchFollows = 1 << 16;

    private readonly CodeImage _code;
    private readonly RegionDecoder _decoder;
    private readonly Dictionary<uint, ImportFact> _slots = [];
    private readonly Dictionary<ImportFact, ImportInfo> _imports = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<string, int> _keyIds = new(StringComparer.Ordinal);
    private readonly List<string> _keyNames = [];
    // Forward register tracking, reused from one load to the next: visited[k] == _visitMark means seen this time.
    private readonly InstructionInfoFactory _info = new();
    private readonly Stack<int> _work = new();
    private int[] _visited = [];
    private int _visitMark;

    private readonly Func<uint, uint?>? _functionOf;

    /// <param name="functionOf">The function containing a site when .pdata does not say (x86, x64 leaf functions): the shared code map.</param>
    public CallSiteFinder(CodeImage code, RegionDecoder decoder, IReadOnlyList<ImportFact> imports, Func<uint, uint?>? functionOf = null)
    {
        _code = code;
        _decoder = decoder;
        _functionOf = functionOf;
        foreach (var i in imports)
            if (i.SlotRva is uint slot) _slots.TryAdd(slot, i);
    }

    private readonly record struct Pending(uint Rva, ImportFact Api, CallSiteShape Shape, CodeRegion Region, int Index);

    public List<CallSite> FindAll()
    {
        if (_slots.Count == 0) return [];
        try
        {
            return Find();
        }
        finally
        {
            _decoder.Release(); // the regions die here: nothing found refers to them
        }
    }

    private List<CallSite> Find()
    {
        using var pending = new PooledList<Pending>(256);
        var thunkJumps = new Dictionary<uint, (ImportFact Api, CodeRegion Region, int Index)>();
        // Candidates come in increasing order within a section, so a repeat is possible only after a decrease
        // (overlapping sections): only then is a set of the starts seen needed.
        HashSet<uint>? seen = null;
        uint? last = null;
        foreach (var section in _code.Sections)
        {
            foreach (var (start, _) in SlotCandidates(section))
            {
                if (seen is null && start <= last) seen = SeenSoFar();
                last = start;
                if (seen is not null && !seen.Add(start)) continue;
                var region = _decoder.RegionFor(start);
                if (region is null) continue;
                var index = region.IndexOf(start);
                ref readonly var i = ref region[index];
                if (SlotOperand(i) is not { } slot || !_slots.TryGetValue(slot, out var api)) continue;
                if (i.Mnemonic == Mnemonic.Call && i.Op0Kind == OpKind.Memory)
                    pending.Add(new Pending(start, api, CallSiteShape.Direct, region, index));
                else if (i.Mnemonic == Mnemonic.Jmp && i.Op0Kind == OpKind.Memory)
                    thunkJumps[start] = (api, region, index);
                else if (i.Mnemonic == Mnemonic.Mov && i.Op0Kind == OpKind.Register && i.Op0Register.GetSize() == (_code.Is64 ? 8 : 4))
                    FollowRegister(start, i.Op0Register.GetFullRegister(), api, pending);
            }
        }
        ResolveJumps(thunkJumps, pending);

        return BuildSites(pending.AsSpan());
    }

    /// <summary>
    /// One site per (RVA, API key), the first found winning, with its arguments, ordered by RVA then key. One sort
    /// of the pending sites does the deduplication, the ordering and the "which API does the call at this RVA
    /// reach" table that argument recovery needs for x86 stack cleanup.
    /// </summary>
    private List<CallSite> BuildSites(ReadOnlySpan<Pending> pending)
    {
        var count = pending.Length;
        var infos = new ImportInfo[count];
        for (var n = 0; n < count; n++) infos[n] = Import(pending[n].Api);
        // The rank of each distinct key (ordinal order) stands in for the string.
        var keyRank = new int[_keyNames.Count];
        var byName = Enumerable.Range(0, _keyNames.Count).ToArray();
        Array.Sort(byName, (a, b) => string.CompareOrdinal(_keyNames[a], _keyNames[b]));
        for (var r = 0; r < byName.Length; r++) keyRank[byName[r]] = r;

        var keys = new ulong[count];
        var order = new int[count];
        for (var n = 0; n < count; n++)
        {
            keys[n] = ((ulong)pending[n].Rva << 32) | (uint)keyRank[infos[n].KeyId];
            order[n] = n;
        }
        Array.Sort(keys, order);

        // Per RVA, the API of the first pending site there; per (RVA, key), the first pending site.
        var calleeRvas = new uint[count];
        var calleeSignatures = new PoolApi?[count];
        var rvaCount = 0;
        using var kept = new PooledList<int>(count);
        using var requests = new PooledList<ArgumentRecovery.Request>(count);
        for (var g = 0; g < count;)
        {
            var rva = (uint)(keys[g] >> 32);
            var firstAtRva = int.MaxValue;
            for (; g < count && (uint)(keys[g] >> 32) == rva;)
            {
                var first = order[g];
                for (var key = keys[g]; g < count && keys[g] == key; g++) first = Math.Min(first, order[g]);
                firstAtRva = Math.Min(firstAtRva, first);
                var p = pending[first];
                kept.Add(first);
                requests.Add(new ArgumentRecovery.Request(p.Region, p.Index, (p.Shape & CallSiteShape.TailCall) != 0, infos[first].Signature));
            }
            calleeRvas[rvaCount] = rva;
            calleeSignatures[rvaCount++] = infos[firstAtRva].Signature;
        }
        PoolApi? CalleeOf(uint rva) =>
            Array.BinarySearch(calleeRvas, 0, rvaCount, rva) is var at and >= 0 ? calleeSignatures[at] : null;

        var args = ArgumentRecovery.RecoverAll(requests.AsSpan(), _code.Is64, CalleeOf);
        var sites = new List<CallSite>(kept.Count);
        for (var n = 0; n < kept.Count; n++)
        {
            var p = pending[kept[n]];
            var function = p.Region.FunctionStart ?? _code.Functions.Find(p.Rva)?.Primary ?? _functionOf?.Invoke(p.Rva);
            sites.Add(new CallSite(p.Api, p.Rva, function, args[n], p.Shape));
        }
        return sites;
    }

    private HashSet<uint> SeenSoFar()
    {
        // Replays the candidates up to the first repeat: everything yielded before it was processed once.
        var seen = new HashSet<uint>();
        uint? last = null;
        foreach (var section in _code.Sections)
            foreach (var (start, _) in SlotCandidates(section))
            {
                if (start <= last) return seen;
                seen.Add(start);
                last = start;
            }
        return seen;
    }

    private readonly record struct ImportInfo(int KeyId, PoolApi? Signature);

    // Per import, not per site: the key builds a string.
    private ImportInfo Import(ImportFact api)
    {
        if (_imports.TryGetValue(api, out var info)) return info;
        var key = api.Key;
        if (!_keyIds.TryGetValue(key, out var keyId))
        {
            _keyIds[key] = keyId = _keyNames.Count;
            _keyNames.Add(key);
        }
        return _imports[api] = new ImportInfo(keyId, PoolApis.Find(api.Ref));
    }

    /// <summary>
    /// Byte positions that may start an instruction referencing a slot: x64 <c>FF 15/25 disp32</c> (rip-relative,
    /// optionally REX- or notrack-prefixed) and <c>REX.W 8B /r disp32</c>; x86 <c>FF 15/25 abs32</c>, <c>A1 abs32</c>
    /// and <c>8B /r abs32</c>. Decoding confirms or rejects each one.
    /// </summary>
    private IEnumerable<(uint Start, uint Slot)> SlotCandidates(CodeSection section)
    {
        var bytes = section.Bytes;
        for (var p = 0; p + 6 <= bytes.Length; p++)
        {
            var b0 = bytes[p];
            var b1 = bytes[p + 1];
            var rva = section.Rva + (uint)p;
            if (_code.Is64)
            {
                if (b0 == 0xFF && b1 is 0x15 or 0x25 && Slot64(rva + 6, bytes, p + 2) is { } s1)
                {
                    if (p > 0 && IsPrefix64(bytes[p - 1])) yield return (rva - 1, s1);
                    yield return (rva, s1);
                }
                else if (b0 == 0x8B && (b1 & 0xC7) == 0x05 && p > 0 && (bytes[p - 1] & 0xF8) == 0x48 && Slot64(rva + 6, bytes, p + 2) is { } s2)
                    yield return (rva - 1, s2);
            }
            else
            {
                if (b0 == 0xFF && b1 is 0x15 or 0x25 && Slot32(bytes, p + 2) is { } s1)
                {
                    if (p > 0 && bytes[p - 1] == 0x3E) yield return (rva - 1, s1);
                    yield return (rva, s1);
                }
                else if (b0 == 0xA1 && Slot32(bytes, p + 1) is { } s2)
                    yield return (rva, s2);
                else if (b0 == 0x8B && (b1 & 0xC7) == 0x05 && Slot32(bytes, p + 2) is { } s3)
                    yield return (rva, s3);
            }
        }
    }

    private static bool IsPrefix64(byte b) => (b & 0xF0) == 0x40 || b == 0x3E;

    private uint? Slot64(uint nextIp, byte[] bytes, int at)
    {
        var target = (uint)(nextIp + BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(at)));
        return _slots.ContainsKey(target) ? target : null;
    }

    private uint? Slot32(byte[] bytes, int at)
    {
        var rva = _code.AbsoluteToRva(BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at)));
        return rva is { } r && _slots.ContainsKey(r) ? r : null;
    }

    /// <summary>The slot an instruction's memory operand addresses, when it is a plain rip-relative or absolute one.</summary>
    private uint? SlotOperand(in Instruction i)
    {
        if (i.Op0Kind != OpKind.Memory && i.Op1Kind != OpKind.Memory) return null;
        if (i.IsIPRelativeMemoryOperand) return (uint)i.IPRelativeMemoryAddress;
        if (_code.Is64 || i.MemoryBase != Register.None || i.MemoryIndex != Register.None) return null;
        return _code.AbsoluteToRva(i.MemoryDisplacement32);
    }

    /// <summary>
    /// From <c>mov reg, [slot]</c>, every <c>call reg</c> / <c>jmp reg</c> reachable along paths that do not
    /// overwrite the register (direct branches inside the function are followed; a call clobbers volatile ones).
    /// </summary>
    private void FollowRegister(uint loadRva, Register reg, ImportFact api, PooledList<Pending> pending)
    {
        var region = _decoder.Forward(loadRva, RegisterFollowBytes);
        if (region is null) return;
        var loadIndex = region.IndexOf(loadRva);
        if (loadIndex < 0) return;
        var isVolatile = reg is Register.RAX or Register.RCX or Register.RDX
            || (_code.Is64 && reg is Register.R8 or Register.R9 or Register.R10 or Register.R11);
        if (_visited.Length < region.Count) _visited = new int[Math.Max(region.Count, 2 * _visited.Length)];
        var visited = _visited;
        var mark = ++_visitMark;
        var work = _work;
        work.Clear();
        work.Push(loadIndex + 1);
        var follows = 0;
        while (work.Count > 0 && follows++ < MaxBranchFollows)
        {
            var k = work.Pop();
            for (; k < region.Count && visited[k] != mark; k++)
            {
                visited[k] = mark;
                ref readonly var i = ref region[k];
                var target = i.Op0Kind == OpKind.Register && i.Op0Register.GetFullRegister() == reg;
                if (i.Mnemonic == Mnemonic.Call)
                {
                    if (target) AddSite(region, k, api, CallSiteShape.ViaRegister, pending);
                    if (isVolatile) break;
                    continue;
                }
                if (i.Mnemonic == Mnemonic.Jmp && target)
                {
                    AddSite(region, k, api, CallSiteShape.ViaRegister | CallSiteShape.TailCall, pending);
                    break;
                }
                if (region.WritesGpr(k, reg, _info)) break;
                var flow = i.FlowControl;
                if (flow is FlowControl.Return or FlowControl.IndirectBranch or FlowControl.Interrupt or FlowControl.Exception) break;
                if (flow is FlowControl.UnconditionalBranch or FlowControl.ConditionalBranch && CodeRegion.IsDirectBranch(i))
                {
                    var t = region.IndexOf((uint)i.NearBranchTarget);
                    if (t >= 0 && visited[t] != mark) work.Push(t);
                    if (flow == FlowControl.UnconditionalBranch) break;
                }
            }
        }
    }

    // A region decoded forward from the load starts at the load: for the arguments, the code before it matters
    // too, so without a known function the site gets its own window.
    private void AddSite(CodeRegion region, int index, ImportFact api, CallSiteShape shape, PooledList<Pending> pending)
    {
        var rva = (uint)region[index].IP;
        if (region.FunctionStart is null && _decoder.RegionFor(rva) is { } own && own.IndexOf(rva) is var at and >= 0)
            (region, index) = (own, at);
        pending.Add(new Pending(rva, api, shape, region, index));
    }

    /// <summary>Nothing but padding between the jump and the last barrier before it: a thunk, not a tail call.</summary>
    private static bool IsThunkShaped(CodeRegion region, int index)
    {
        var start = ArgumentRecovery.SegmentStart(region, index);
        for (var k = start; k < index; k++)
            if (region[k].Mnemonic is not (Mnemonic.Nop or Mnemonic.Int3)) return false;
        return true;
    }

    /// <summary>
    /// A <c>jmp [slot]</c> with direct callers (<c>call rel32</c> / <c>jmp rel32</c> targeting it) is an import
    /// thunk: each caller is a site. Without callers it is a tail call in a function: the jump is the site.
    /// </summary>
    private void ResolveJumps(Dictionary<uint, (ImportFact Api, CodeRegion Region, int Index)> jumps, PooledList<Pending> pending)
    {
        if (jumps.Count == 0) return;
        var callers = new Dictionary<uint, List<Pending>>();
        foreach (var section in _code.Sections)
        {
            var bytes = section.Bytes;
            for (var p = 0; p + 5 <= bytes.Length; p++)
            {
                // Skip straight to the next E8/E9 byte (vectorised): most bytes are neither.
                var next = bytes.AsSpan(p, bytes.Length - 4 - p).IndexOfAny((byte)0xE8, (byte)0xE9);
                if (next < 0) break;
                p += next;
                var rva = section.Rva + (uint)p;
                var target = (uint)(rva + 5 + BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(p + 1)));
                if (!jumps.TryGetValue(target, out var thunk) || target == rva) continue;
                var region = _decoder.RegionFor(rva);
                if (region is null) continue;
                var index = region.IndexOf(rva);
                ref readonly var i = ref region[index];
                if (!CodeRegion.IsDirectBranch(i) || i.NearBranchTarget != target) continue;
                if (i.Mnemonic is not (Mnemonic.Call or Mnemonic.Jmp)) continue;
                var shape = CallSiteShape.ViaThunk | (i.Mnemonic == Mnemonic.Jmp ? CallSiteShape.TailCall : 0);
                if (!callers.TryGetValue(target, out var list)) callers[target] = list = [];
                list.Add(new Pending(rva, thunk.Api, shape, region, index));
            }
        }
        foreach (var (rva, jump) in jumps)
        {
            if (callers.TryGetValue(rva, out var list))
                foreach (var caller in list) pending.Add(caller);
            else if (!IsThunkShaped(jump.Region, jump.Index)) pending.Add(new Pending(rva, jump.Api, CallSiteShape.TailCall, jump.Region, jump.Index));
            // else: an import thunk nothing calls directly (linkers emit one per import): not a call site.
        }
    }
}
