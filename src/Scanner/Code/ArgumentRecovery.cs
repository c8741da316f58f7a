using System.Buffers;
using DriverAudit.Rules.Kernel;
using Iced.Intel;

namespace DriverAudit.Scanner.Code;

/// <summary>
/// Recovers constant arguments of a call by simulating the straight-line code that reaches it: from the last
/// point the analysis cannot see through (the function start, a branch target, the instruction after an
/// unconditional jump or return) forward to the call. Registers and stack slots hold either a proven constant or
/// nothing; anything not modelled exactly makes what it writes unknown. What is unknown at the call stays unknown.
/// </summary>
internal static class ArgumentRecovery
{
    /// <summary>One call site whose arguments are wanted: the region and index of its instruction.</summary>
    internal readonly record struct Request(CodeRegion Region, int Index, bool TailCall, PoolApi? Signature);

    /// <summary>
    /// The arguments of every request, in request order. Requests are taken region by region in address order:
    /// one forward scan of each region finds every site's straight-line run (<see cref="SegmentStart"/>), and
    /// sites that share a run are simulated in one pass (the state at a later site is the state at an earlier one
    /// stepped further), so a run with many calls costs its length once rather than once per call.
    /// </summary>
    /// <param name="calleeOf">The API an earlier call in the run reaches, when known (its stack cleanup on x86).</param>
    public static ArgValue[][] RecoverAll(ReadOnlySpan<Request> requests, bool is64, Func<uint, PoolApi?> calleeOf)
    {
        var results = new ArgValue[requests.Length][];
        if (requests.IsEmpty) return results;
        var regionIds = new Dictionary<CodeRegion, int>(ReferenceEqualityComparer.Instance);
        var keys = ArrayPool<ulong>.Shared.Rent(requests.Length);
        var order = ArrayPool<int>.Shared.Rent(requests.Length);
        try
        {
            for (var r = 0; r < requests.Length; r++)
            {
                var q = requests[r];
                if (!regionIds.TryGetValue(q.Region, out var id)) regionIds[q.Region] = id = regionIds.Count;
                keys[r] = ((ulong)(uint)id << 32) | (uint)q.Index;
                order[r] = r;
            }
            Array.Sort(keys, order, 0, requests.Length);
            var state = new MachineState(is64, new InstructionInfoFactory());
            CodeRegion? region = null;
            int scanned = 0, segment = 0, stateStart = -1, stepped = 0;
            for (var n = 0; n < requests.Length; n++)
            {
                var q = requests[order[n]];
                if (!ReferenceEquals(q.Region, region))
                {
                    region = q.Region;
                    scanned = segment = stepped = 0;
                    stateStart = -1;
                }
                for (; scanned < q.Index; scanned++)
                    if (StartsSegment(region, scanned + 1)) segment = scanned + 1;
                if (segment != stateStart)
                {
                    state.Reset(region.StackEscapes);
                    stateStart = stepped = segment;
                }
                for (; stepped < q.Index; stepped++) state.Step(region[stepped], calleeOf);
                results[order[n]] = state.Arguments(q.Signature, q.TailCall);
            }
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(keys);
            ArrayPool<int>.Shared.Return(order);
        }
        return results;
    }

    /// <summary>First index of the straight-line run that ends at <paramref name="siteIndex"/>.</summary>
    internal static int SegmentStart(CodeRegion region, int siteIndex)
    {
        for (var k = siteIndex; k > 0; k--)
            if (StartsSegment(region, k)) return k;
        return 0;
    }

    /// <summary>Instruction k (k &gt; 0) cannot be reasoned about from the one before it.</summary>
    private static bool StartsSegment(CodeRegion region, int k)
    {
        if (region.IsLabelAt(k)) return true; // reachable from elsewhere, with other values
        switch (region[k - 1].FlowControl)
        {
            case FlowControl.UnconditionalBranch:
            case FlowControl.IndirectBranch:
            case FlowControl.Return:
            case FlowControl.Interrupt:
            case FlowControl.Exception:
                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// True when the address of the stack frame is taken (a local's address handed out), so a callee or a store
    /// through another pointer may change stack slots.
    /// </summary>
    internal static bool StackEscapes(CodeRegion region)
    {
        foreach (ref readonly var i in region.Instructions)
        {
            if (i.Mnemonic == Mnemonic.Lea && i.Op0Kind == OpKind.Register && !IsFrameRegister(i.Op0Register)
                && IsFrameRegister(i.MemoryBase))
                return true;
            if (i.Mnemonic == Mnemonic.Mov && i.Op0Kind == OpKind.Register && i.Op1Kind == OpKind.Register
                && IsFrameRegister(i.Op1Register) && !IsFrameRegister(i.Op0Register))
                return true;
        }
        return false;
    }

    internal static bool IsFrameRegister(Register r) => r.GetFullRegister() is Register.RSP or Register.RBP;
}

/// <summary>Constant-propagation state: 16 general registers, the stack pointer and frame pointer as positions in
/// abstract stack spaces, and the stack slots known to hold constants. Reused from one straight-line run to the
/// next (<see cref="Reset"/>), so simulating a run allocates nothing but the arguments it reports.</summary>
internal sealed class MachineState
{
    private const int X64HomeSpace = 0x20;
    private static readonly Register[] X64ArgRegisters = [Register.RCX, Register.RDX, Register.R8, Register.R9];
    private static readonly Register[] X64Volatile = [Register.RAX, Register.RCX, Register.RDX, Register.R8, Register.R9, Register.R10, Register.R11];
    private static readonly Register[] X86Volatile = [Register.RAX, Register.RCX, Register.RDX];

    private readonly bool _is64;
    private bool _stackEscapes;
    private readonly ulong?[] _regs = new ulong?[16];
    private Slot[] _slots = new Slot[16];
    private int _slotCount;
    private readonly InstructionInfoFactory _info;
    // A "space" is a stack position reference: two positions in one space differ by a known amount; two spaces
    // have an unknown relation (after a call whose stack cleanup is unknown, or rbp's value at the start).
    private int _spSpace, _nextSpace = 2;
    private long _sp;
    private (int Space, long Offset)? _bp = (1, 0);
    private int _callGeneration;

    private readonly record struct Slot(int Space, long Offset, int Size, ulong Value, bool ViaSp, int Generation);

    public MachineState(bool is64, InstructionInfoFactory info)
    {
        _is64 = is64;
        _info = info;
    }

    /// <summary>Back to the state at the start of a run: nothing known, the stack and frame in fresh spaces.</summary>
    public void Reset(bool stackEscapes)
    {
        _stackEscapes = stackEscapes;
        Array.Clear(_regs);
        _slotCount = 0;
        _spSpace = 0;
        _nextSpace = 2;
        _sp = 0;
        _bp = (1, 0);
        _callGeneration = 0;
    }

    private int WordSize => _is64 ? 8 : 4;

    public void Step(in Instruction i, Func<uint, PoolApi?> calleeOf)
    {
        switch (i.Mnemonic)
        {
            case Mnemonic.Call:
                Call(i, calleeOf((uint)i.IP));
                return;
            case Mnemonic.Mov when i.OpCount == 2:
                if (i.Op0Kind == OpKind.Register)
                {
                    var dst = i.Op0Register;
                    if (dst.GetFullRegister() == Register.RBP && i.Op1Kind == OpKind.Register && i.Op1Register.GetFullRegister() == Register.RSP)
                    {
                        _bp = (_spSpace, _sp);
                        return;
                    }
                    if (dst.GetFullRegister() == Register.RSP && i.Op1Kind == OpKind.Register && i.Op1Register.GetFullRegister() == Register.RBP)
                    {
                        SetSpFromBp(0);
                        return;
                    }
                    if (!IsGpr(dst)) break;
                    WriteReg(dst, Source(i, 1, dst.GetSize()));
                    return;
                }
                if (i.Op0Kind == OpKind.Memory)
                {
                    var size = i.MemorySize.GetSize();
                    var value = i.Op1Kind == OpKind.Register ? (IsGpr(i.Op1Register) ? ReadReg(i.Op1Register) : null) : Immediate(i, 1, size);
                    StoreMemory(i, size, value);
                    return;
                }
                break;
            case Mnemonic.Movzx when i.Op0Kind == OpKind.Register && IsGpr(i.Op0Register):
                {
                    var srcSize = i.Op1Kind == OpKind.Register ? i.Op1Register.GetSize() : i.MemorySize.GetSize();
                    WriteReg(i.Op0Register, Source(i, 1, srcSize));
                    return;
                }
            case Mnemonic.Movsx or Mnemonic.Movsxd when i.Op0Kind == OpKind.Register && IsGpr(i.Op0Register):
                {
                    var srcSize = i.Op1Kind == OpKind.Register ? i.Op1Register.GetSize() : i.MemorySize.GetSize();
                    var v = Source(i, 1, srcSize);
                    WriteReg(i.Op0Register, v is { } x ? SignExtend(x, srcSize) : null);
                    return;
                }
            case Mnemonic.Xor or Mnemonic.Sub when i.Op0Kind == OpKind.Register && i.Op1Kind == OpKind.Register
                                                  && i.Op0Register == i.Op1Register && IsGpr(i.Op0Register)
                                                  && i.Op0Register.GetFullRegister() != Register.RSP:
                WriteReg(i.Op0Register, 0);
                return;
            case Mnemonic.Add or Mnemonic.Sub when i.Op0Kind == OpKind.Register && i.Op0Register.GetFullRegister() == Register.RSP
                                                  && IsImmediate(i.Op1Kind):
                {
                    var delta = (long)i.GetImmediate(1);
                    _sp += i.Mnemonic == Mnemonic.Add ? delta : -delta;
                    return;
                }
            case Mnemonic.Add or Mnemonic.Sub or Mnemonic.Or or Mnemonic.And or Mnemonic.Xor or Mnemonic.Shl or Mnemonic.Shr
                when i.Op0Kind == OpKind.Register && IsGpr(i.Op0Register) && i.Op0Register.GetFullRegister() is not (Register.RSP or Register.RBP):
                {
                    var size = i.Op0Register.GetSize();
                    var a = ReadReg(i.Op0Register);
                    var b = Source(i, 1, size);
                    WriteReg(i.Op0Register, a is { } x && b is { } y ? Arithmetic(i.Mnemonic, x, y, size) : null);
                    return;
                }
            case Mnemonic.Lea when i.Op0Kind == OpKind.Register && IsGpr(i.Op0Register):
                {
                    var dst = i.Op0Register.GetFullRegister();
                    if (dst == Register.RSP && i.MemoryBase.GetFullRegister() == Register.RBP && i.MemoryIndex == Register.None)
                    {
                        SetSpFromBp((long)i.MemoryDisplacement64);
                        return;
                    }
                    if (dst is Register.RSP or Register.RBP) break;
                    // An address (rip-relative, absolute or frame-relative) is not a constant the tags care about.
                    ulong? v = null;
                    if (!i.IsIPRelativeMemoryOperand && i.MemoryBase != Register.None && !ArgumentRecovery.IsFrameRegister(i.MemoryBase)
                        && i.MemoryIndex == Register.None && ReadReg(i.MemoryBase) is { } b)
                        v = b + i.MemoryDisplacement64;
                    WriteReg(i.Op0Register, v);
                    return;
                }
            case Mnemonic.Push when i.OpCount == 1:
                {
                    var size = i.StackPointerIncrement < 0 ? -i.StackPointerIncrement : WordSize;
                    ulong? v = i.Op0Kind switch
                    {
                        OpKind.Register => IsGpr(i.Op0Register) ? ReadReg(i.Op0Register) : null,
                        OpKind.Memory => LoadMemory(i, size),
                        _ => Immediate(i, 0, size),
                    };
                    _sp -= size;
                    Store(_spSpace, _sp, size, v, viaSp: true);
                    return;
                }
            case Mnemonic.Pop when i.OpCount == 1 && i.Op0Kind == OpKind.Register && IsGpr(i.Op0Register) && i.Op0Register.GetFullRegister() != Register.RSP:
                {
                    var size = i.Op0Register.GetSize();
                    var v = Read(_spSpace, _sp, size);
                    _sp += size;
                    if (i.Op0Register.GetFullRegister() == Register.RBP) _bp = null;
                    else WriteReg(i.Op0Register, v);
                    return;
                }
            case Mnemonic.Leave:
                SetSpFromBp(0);
                _sp += WordSize;
                _bp = null;
                return;
            case Mnemonic.Nop:
                return;
        }
        Generic(i);
    }

    /// <summary>Anything not modelled: whatever it writes becomes unknown.</summary>
    private void Generic(in Instruction i)
    {
        var info = _info.GetInfo(i);
        foreach (var r in info.GetUsedRegisters())
        {
            if (!IsWrite(r.Access) || !IsGpr(r.Register)) continue;
            var full = r.Register.GetFullRegister();
            if (full == Register.RSP) NewSpSpace();
            else if (full == Register.RBP) _bp = null;
            else _regs[full - Register.RAX] = null;
        }
        foreach (var m in info.GetUsedMemory())
            if (IsWrite(m.Access)) ClobberMemory(m.Base, m.Index, (long)m.Displacement, m.MemorySize.GetSize());
    }

    private void Call(in Instruction i, PoolApi? callee)
    {
        // The callee owns its arguments: x64 the 32-byte home space and its stack arguments; x86 its pushed arguments.
        var argBytes = callee is null ? -1 : _is64 ? Math.Max(X64HomeSpace, 8 * callee.ArgCount) : Sum(callee.ArgSizes);
        if (_stackEscapes) _slotCount = 0;
        else
        {
            var kept = 0;
            for (var n = 0; n < _slotCount; n++)
            {
                var s = _slots[n];
                var dies = s.Space == _spSpace && s.Offset + s.Size > _sp && (_is64
                    ? s.Offset < _sp + (argBytes < 0 ? X64HomeSpace : argBytes) || (argBytes < 0 && s.ViaSp && s.Generation == _callGeneration)
                    : argBytes < 0 ? s.ViaSp : s.Offset < _sp + argBytes);
                if (!dies) _slots[kept++] = s;
            }
            _slotCount = kept;
        }
        _callGeneration++;
        foreach (var r in _is64 ? X64Volatile : X86Volatile) _regs[r - Register.RAX] = null;
        if (!_is64)
        {
            // Kernel APIs are stdcall: the callee pops its arguments. An unknown callee may or may not.
            if (callee is not null) _sp += argBytes;
            else NewSpSpace();
        }
        _ = i;
    }

    public ArgValue[] Arguments(PoolApi? signature, bool tailCall)
    {
        var args = new ArgValue[CallSite.TrackedArgs];
        if (_is64)
        {
            for (var k = 0; k < args.Length; k++)
            {
                var v = _regs[X64ArgRegisters[k] - Register.RAX];
                var size = signature is not null && k < signature.ArgCount ? signature.ArgSizes[k] : 8;
                args[k] = v is { } x ? ArgValue.Known(Mask(x, size)) : ArgValue.Unknown;
            }
            return args;
        }
        // x86: at a call the first argument is at [esp]; at a tail-call jump the return address is there.
        var offset = _sp + (tailCall ? 4 : 0);
        for (var k = 0; k < args.Length; k++)
        {
            var size = signature is not null ? (k < signature.ArgCount ? signature.ArgSizes[k] : 4) : 4;
            ulong? v = size == 8
                ? Read(_spSpace, offset, 8) ?? (Read(_spSpace, offset, 4) is { } lo && Read(_spSpace, offset + 4, 4) is { } hi ? lo | (hi << 32) : null)
                : Read(_spSpace, offset, size);
            args[k] = v is { } x ? ArgValue.Known(x) : ArgValue.Unknown;
            offset += size;
        }
        return args;
    }

    // ---------------------------------------------------------------- registers

    private static bool IsGpr(Register r) => r.IsGPR();

    private ulong? ReadReg(Register r)
    {
        var full = r.GetFullRegister();
        if (full is Register.RSP or Register.RBP) return null; // positions, not constants
        var v = _regs[full - Register.RAX];
        if (v is not { } x) return null;
        return r is Register.AH or Register.BH or Register.CH or Register.DH ? (x >> 8) & 0xFF : Mask(x, r.GetSize());
    }

    private void WriteReg(Register r, ulong? value)
    {
        var full = r.GetFullRegister();
        if (full == Register.RSP) { NewSpSpace(); return; }
        if (full == Register.RBP) { _bp = null; return; }
        ref var slot = ref _regs[full - Register.RAX];
        var size = r.GetSize();
        if (size >= 4)
        {
            slot = value is { } v ? Mask(v, size) : null; // 32-bit writes zero-extend
            return;
        }
        if (slot is not { } old || value is not { } nv) { slot = null; return; }
        var shift = r is Register.AH or Register.BH or Register.CH or Register.DH ? 8 : 0;
        var mask = (size == 1 ? 0xFFUL : 0xFFFFUL) << shift;
        slot = (old & ~mask) | ((nv << shift) & mask);
    }

    private ulong? Source(in Instruction i, int op, int size) => i.GetOpKind(op) switch
    {
        OpKind.Register => IsGpr(i.GetOpRegister(op)) ? ReadReg(i.GetOpRegister(op)) : null,
        OpKind.Memory => LoadMemory(i, size),
        var k when IsImmediate(k) => Immediate(i, op, size),
        _ => null,
    };

    private static ulong? Immediate(in Instruction i, int op, int size) =>
        IsImmediate(i.GetOpKind(op)) ? Mask(i.GetImmediate(op), size) : null;

    private static bool IsImmediate(OpKind k) => k is OpKind.Immediate8 or OpKind.Immediate16 or OpKind.Immediate32 or OpKind.Immediate64
        or OpKind.Immediate8to16 or OpKind.Immediate8to32 or OpKind.Immediate8to64 or OpKind.Immediate32to64 or OpKind.Immediate8_2nd;

    // ---------------------------------------------------------------- stack

    private void NewSpSpace()
    {
        _spSpace = _nextSpace++;
        _sp = 0;
    }

    private void SetSpFromBp(long displacement)
    {
        if (_bp is { } bp) { _spSpace = bp.Space; _sp = bp.Offset + displacement; }
        else NewSpSpace();
    }

    /// <summary>Where a memory operand points in the stack, or null (not stack-relative, or unknown frame).</summary>
    private (int Space, long Offset, bool ViaSp)? StackLocation(Register baseReg, Register index, long displacement)
    {
        if (index != Register.None) return null;
        switch (baseReg.GetFullRegister())
        {
            case Register.RSP: return (_spSpace, _sp + displacement, true);
            case Register.RBP: return _bp is { } bp ? (bp.Space, bp.Offset + displacement, false) : null;
            default: return null;
        }
    }

    private ulong? LoadMemory(in Instruction i, int size)
    {
        if (i.IsIPRelativeMemoryOperand) return null; // globals are variables: unknown
        var at = StackLocation(i.MemoryBase, i.MemoryIndex, (long)i.MemoryDisplacement64);
        return at is { } a ? Read(a.Space, a.Offset, size) : null;
    }

    private void StoreMemory(in Instruction i, int size, ulong? value)
    {
        var at = i.IsIPRelativeMemoryOperand ? null : StackLocation(i.MemoryBase, i.MemoryIndex, (long)i.MemoryDisplacement64);
        if (at is { } a) Store(a.Space, a.Offset, size, value, a.ViaSp);
        else ClobberMemory(i.IsIPRelativeMemoryOperand ? Register.RIP : i.MemoryBase, i.MemoryIndex, (long)i.MemoryDisplacement64, size);
    }

    private void ClobberMemory(Register baseReg, Register index, long displacement, int size)
    {
        if (baseReg is Register.RIP or Register.EIP || (baseReg == Register.None && index == Register.None))
            return; // a global: not tracked, and not the stack
        if (StackLocation(baseReg, index, displacement) is { } a) { Kill(a.Space, a.Offset, Math.Max(size, 1)); return; }
        if (baseReg.GetFullRegister() is Register.RSP or Register.RBP || _stackEscapes) _slotCount = 0;
    }

    private void Store(int space, long offset, int size, ulong? value, bool viaSp)
    {
        Kill(space, offset, size);
        if (value is { } v && size is 1 or 2 or 4 or 8)
        {
            if (_slotCount == _slots.Length) Array.Resize(ref _slots, _slots.Length * 2);
            _slots[_slotCount++] = new Slot(space, offset, size, Mask(v, size), viaSp, _callGeneration);
        }
    }

    /// <summary>A write may alias anything in another space (unknown relation) and what it overlaps in its own.</summary>
    private void Kill(int space, long offset, int size)
    {
        var kept = 0;
        for (var n = 0; n < _slotCount; n++)
        {
            var s = _slots[n];
            if (!(s.Space != space || (s.Offset < offset + size && offset < s.Offset + s.Size))) _slots[kept++] = s;
        }
        _slotCount = kept;
    }

    private ulong? Read(int space, long offset, int size)
    {
        for (var n = 0; n < _slotCount; n++)
        {
            var s = _slots[n];
            if (s.Space == space && s.Offset == offset && s.Size >= size) return Mask(s.Value, size);
        }
        return null;
    }

    private static int Sum(int[] sizes)
    {
        var sum = 0;
        foreach (var n in sizes) sum += n;
        return sum;
    }

    // ---------------------------------------------------------------- arithmetic

    private static bool IsWrite(OpAccess a) => CodeRegion.IsWrite(a);

    private static ulong Mask(ulong v, int size) => size >= 8 ? v : v & ((1UL << (size * 8)) - 1);

    private static ulong SignExtend(ulong v, int size) => size switch
    {
        1 => (ulong)(long)(sbyte)v,
        2 => (ulong)(long)(short)v,
        4 => (ulong)(long)(int)v,
        _ => v,
    };

    private static ulong? Arithmetic(Mnemonic m, ulong a, ulong b, int size)
    {
        var bits = size * 8;
        return m switch
        {
            Mnemonic.Add => a + b,
            Mnemonic.Sub => a - b,
            Mnemonic.Or => a | b,
            Mnemonic.And => a & b,
            Mnemonic.Xor => a ^ b,
            Mnemonic.Shl => (b & (bits == 64 ? 63UL : 31UL)) is var c ? a << (int)c : null,
            Mnemonic.Shr => (b & (bits == 64 ? 63UL : 31UL)) is var c ? Mask(a, size) >> (int)c : null,
            _ => null,
        };
    }
}
