using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Iced.Intel;

namespace DriverAudit.Scanner.Code;

/// <summary>
/// A run of instructions decoded linearly (IP = RVA, so rip-relative operands and branch targets are RVAs),
/// with the branch targets that fall inside it. Labels are where straight-line reasoning must stop: code
/// there can be reached from elsewhere with other register values. What is derived from the whole region
/// (labels, whether the frame escapes, which registers an instruction writes) is computed once and shared by
/// every call site in it. The instructions live in the <see cref="RegionDecoder"/>'s pooled storage: a region
/// is valid only until its decoder is released.
/// </summary>
internal sealed class CodeRegion
{
    private readonly Instruction[] _buffer;
    private readonly int _offset;
    private readonly ulong[] _labels; // bit k: instruction k is the target of a direct branch in the region
    private bool? _stackEscapes;
    // Per instruction: bit n = full GPR n (RAX + n) written. 0xFFFF = not computed yet (no instruction writes all
    // sixteen; if one did, it would only be recomputed).
    private ushort[]? _gprWrites;

    public CodeRegion(Instruction[] instructions, uint? functionStart) : this(instructions, 0, instructions.Length, functionStart) { }

    public CodeRegion(Instruction[] buffer, int offset, int count, uint? functionStart)
    {
        _buffer = buffer;
        _offset = offset;
        Count = count;
        FunctionStart = functionStart;
        _labels = new ulong[(count + 63) >> 6];
        if (count == 0) return;
        var start = _buffer[offset].IP;
        var end = _buffer[offset + count - 1].NextIP;
        foreach (ref readonly var i in Instructions)
        {
            if (!IsDirectBranch(i)) continue;
            var target = i.NearBranchTarget;
            // A target inside an instruction is no instruction's label: only exact starts matter.
            if (target >= start && target < end && IndexOf((uint)target) is var k and >= 0) _labels[k >> 6] |= 1UL << k;
        }
    }

    public ReadOnlySpan<Instruction> Instructions => _buffer.AsSpan(_offset, Count);
    public int Count { get; }
    public uint? FunctionStart { get; }

    public ref readonly Instruction this[int index]
    {
        get
        {
            if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index));
            return ref _buffer[_offset + index];
        }
    }

    /// <summary>Whether instruction <paramref name="index"/> is the target of a direct branch inside the region.</summary>
    public bool IsLabelAt(int index) => (_labels[index >> 6] & (1UL << index)) != 0;

    /// <summary>Whether the stack frame's address is taken anywhere in the region (see <see cref="ArgumentRecovery.StackEscapes"/>).</summary>
    public bool StackEscapes => _stackEscapes ??= ArgumentRecovery.StackEscapes(this);

    /// <summary>
    /// Whether instruction <paramref name="index"/> writes (or may write) the general register whose full form is
    /// <paramref name="full"/>, by Iced's instruction info. Cached: forward tracking from several loads in one
    /// function asks about the same instructions.
    /// </summary>
    public bool WritesGpr(int index, Register full, InstructionInfoFactory factory)
    {
        var bit = full - Register.RAX;
        if ((uint)bit >= 16) return WritesRegister(factory, this[index], full);
        _gprWrites ??= NewUnknownMasks(Count);
        var mask = _gprWrites[index];
        if (mask == NotComputed) _gprWrites[index] = mask = GprWriteMask(factory, this[index]);
        return (mask & (1 << bit)) != 0;
    }

    private const ushort NotComputed = 0xFFFF;

    private static ushort[] NewUnknownMasks(int n)
    {
        var masks = new ushort[n];
        Array.Fill(masks, NotComputed);
        return masks;
    }

    private static ushort GprWriteMask(InstructionInfoFactory factory, in Instruction i)
    {
        var mask = 0;
        var info = factory.GetInfo(i);
        foreach (var r in info.GetUsedRegisters())
        {
            var bit = r.Register.GetFullRegister() - Register.RAX;
            if ((uint)bit < 16 && IsWrite(r.Access)) mask |= 1 << bit;
        }
        return (ushort)mask;
    }

    private static bool WritesRegister(InstructionInfoFactory factory, in Instruction i, Register full)
    {
        var info = factory.GetInfo(i);
        foreach (var r in info.GetUsedRegisters())
            if (r.Register.GetFullRegister() == full && IsWrite(r.Access)) return true;
        return false;
    }

    internal static bool IsWrite(OpAccess a) => a is OpAccess.Write or OpAccess.CondWrite or OpAccess.ReadWrite or OpAccess.ReadCondWrite;

    /// <summary>Index of the instruction starting exactly at <paramref name="rva"/>, or -1.</summary>
    public int IndexOf(uint rva)
    {
        int lo = 0, hi = Count - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            var ip = _buffer[_offset + mid].IP;
            if (ip == rva) return mid;
            if (ip < rva) lo = mid + 1; else hi = mid - 1;
        }
        return -1;
    }

    /// <summary>Direct near jumps, conditional jumps, calls (a called address is a function entry) and loop/jrcxz.</summary>
    public static bool IsDirectBranch(in Instruction i) =>
        i.Op0Kind is OpKind.NearBranch16 or OpKind.NearBranch32 or OpKind.NearBranch64;
}

/// <summary>
/// Decodes regions of a <see cref="CodeImage"/>: whole functions (x64 .pdata) or validated windows.
/// One Iced decoder and one scratch list serve every region; the regions' instructions are packed into chunks
/// rented from the shared pool, handed back by <see cref="Release"/> once the analysis is done with them.
/// </summary>
internal sealed class RegionDecoder
{
    /// <summary>Bytes decoded backwards from a site when the function start is unknown, and forward after it.</summary>
    public const int Window = 256;
    /// <summary>Functions longer than this are treated as unknown-start (decode a window instead).</summary>
    public const int MaxFunctionBytes = 256 << 10;
    private const int ChunkInstructions = 4096;

    private readonly CodeImage _code;
    private readonly Dictionary<uint, CodeRegion?> _functions = [];
    private readonly List<Instruction> _scratch = new(256);
    private readonly List<Instruction[]> _chunks = [];
    private int _chunkUsed;
    private SectionReader? _reader;
    private Decoder? _iced;

    public RegionDecoder(CodeImage code) => _code = code;

    /// <summary>Instructions decoded by this decoder (per image: the cost of the analysis).</summary>
    public long InstructionsDecoded { get; private set; }

    /// <summary>
    /// A region containing an instruction that starts exactly at <paramref name="site"/>: the whole containing
    /// function when .pdata says where it is and decoding it lands on the site, else a window of
    /// <see cref="Window"/> bytes before and after, whose start is chosen so that decoding forward lands on the site.
    /// Null when no such decoding exists (the site is not really an instruction boundary).
    /// </summary>
    public CodeRegion? RegionFor(uint site)
    {
        var section = _code.FindSection(site);
        if (section is null) return null;
        if (_code.Functions.Find(site) is { } f && f.End - f.Begin <= MaxFunctionBytes && section.Contains(f.Begin))
        {
            if (!_functions.TryGetValue(f.Begin, out var region))
            {
                var end = Math.Min(f.End, section.EndRva);
                region = Decode(section, f.Begin, end, f.Primary);
                _functions[f.Begin] = region;
            }
            if (region is not null && region.IndexOf(site) >= 0) return region;
            // The function decoded past the site without landing on it: not an instruction of this function.
            if (region is not null && region.Count > 0 && region[region.Count - 1].NextIP > site) return null;
        }
        return WindowAround(section, site);
    }

    /// <summary>Linear decoding from <paramref name="start"/> for up to <paramref name="length"/> bytes (forward analyses).</summary>
    public CodeRegion? Forward(uint start, int length)
    {
        var section = _code.FindSection(start);
        if (section is null) return null;
        if (_code.Functions.Find(start) is { } f && f.End - f.Begin <= MaxFunctionBytes)
        {
            var region = RegionFor(start);
            if (region?.FunctionStart == f.Primary) return region;
        }
        var end = (uint)Math.Min((ulong)start + (uint)length, section.EndRva);
        return Decode(section, start, end, null);
    }

    /// <summary>Hands the instruction storage back to the pool: every region this decoder returned is dead after this.</summary>
    public void Release()
    {
        _functions.Clear();
        foreach (var chunk in _chunks) ArrayPool<Instruction>.Shared.Return(chunk);
        _chunks.Clear();
        _chunkUsed = 0;
    }

    private CodeRegion? WindowAround(CodeSection section, uint site)
    {
        var first = site - Math.Min(Window, site - section.Rva);
        var after = (uint)Math.Min((ulong)site + Window, section.EndRva);
        // Decoding from a window start resynchronises with the real instruction stream within a few instructions,
        // so a real instruction is reached from the first start or one of the next few, while bytes inside another
        // instruction are not. Only 16 starts are tried (an x86 instruction is at most 15 bytes).
        var last = Math.Min(site, first + 15);
        if (first == site) return Whole(section, site, after);
        for (var start = first; start <= last && start < site; start++)
        {
            _scratch.Clear();
            if (!DecodeInto(section, start, site, mustEndAt: site)) continue;
            var prefix = _scratch.Count;
            DecodeInto(section, site, after, mustEndAt: null);
            if (_scratch.Count == prefix || _scratch[prefix].IP != site) return null;
            return Keep(null);
        }
        return null;
    }

    // A site at the very start of its section: nothing before it to validate against.
    private CodeRegion? Whole(CodeSection section, uint site, uint after)
    {
        var rest = Decode(section, site, after, null);
        return rest.Count == 0 ? null : rest;
    }

    private CodeRegion Decode(CodeSection section, uint start, uint end, uint? functionStart)
    {
        _scratch.Clear();
        DecodeInto(section, start, end, mustEndAt: null);
        return Keep(functionStart);
    }

    /// <summary>The scratch list as a region, copied into pooled storage.</summary>
    private CodeRegion Keep(uint? functionStart)
    {
        var count = _scratch.Count;
        if (_chunks.Count == 0 || _chunkUsed + count > _chunks[^1].Length)
        {
            _chunks.Add(ArrayPool<Instruction>.Shared.Rent(Math.Max(ChunkInstructions, count)));
            _chunkUsed = 0;
        }
        var chunk = _chunks[^1];
        CollectionsMarshal.AsSpan(_scratch).CopyTo(chunk.AsSpan(_chunkUsed));
        var region = new CodeRegion(chunk, _chunkUsed, count, functionStart);
        _chunkUsed += count;
        return region;
    }

    /// <summary>
    /// Appends the instructions from <paramref name="start"/> to <paramref name="end"/> to the scratch list, stopping
    /// at an invalid one. False when <paramref name="mustEndAt"/> is given and the decoding does not land exactly on it.
    /// </summary>
    private bool DecodeInto(CodeSection section, uint start, uint end, uint? mustEndAt)
    {
        if (start < section.Rva || end > section.EndRva || end < start) return mustEndAt is null;
        var offset = (int)(start - section.Rva);
        var length = (int)(end - start);
        // Let the last instruction run past `end` (up to 15 bytes), not past the section.
        var readable = (int)Math.Min((long)length + 15, section.Bytes.Length - offset);
        _reader ??= new SectionReader();
        _reader.Reset(section.Bytes, offset, readable);
        // One decoder per image, re-pointed at each start: creating one per region costs more than decoding small ones.
        _iced ??= Decoder.Create(_code.Bitness, _reader, DecoderOptions.None);
        _iced.IP = start;
        var before = _scratch.Count;
        while (_iced.IP < end)
        {
            _iced.Decode(out var instruction);
            if (instruction.IsInvalid)
            {
                if (mustEndAt is not null) { Count(_scratch.Count - before); return false; }
                break;
            }
            _scratch.Add(instruction);
        }
        Count(_scratch.Count - before);
        return mustEndAt is not { } must || _iced.IP == must;
    }

    private void Count(int n)
    {
        InstructionsDecoded += n;
        CodeStats.AddInstructions(n);
        CodeStats.AddRegion();
    }
}

/// <summary>A code reader over part of a byte array that can be re-pointed, so one Iced decoder serves every region.</summary>
internal sealed class SectionReader : CodeReader
{
    private byte[] _bytes = [];
    private int _position, _end;

    public void Reset(byte[] bytes, int offset, int length)
    {
        _bytes = bytes;
        _position = Math.Clamp(offset, 0, bytes.Length);
        _end = (int)Math.Min(bytes.Length, (long)_position + Math.Max(0, length));
    }

    // Iced asks for every byte through this virtual call: 0 <= position < end <= bytes.Length (Reset) lets it skip
    // the array's own bounds check.
    public override int ReadByte()
    {
        var p = _position;
        if (p >= _end) return -1;
        _position = p + 1;
        return Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_bytes), p);
    }
}
