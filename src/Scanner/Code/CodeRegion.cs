using Iced.Intel;

namespace DriverAudit.Scanner.Code;

/// <summary>
/// A run of instructions decoded linearly (IP = RVA, so rip-relative operands and branch targets are RVAs),
/// with the branch targets that fall inside it. Labels are where straight-line reasoning must stop: code
/// there can be reached from elsewhere with other register values.
/// </summary>
internal sealed class CodeRegion
{
    private readonly Instruction[] _instructions;
    private readonly HashSet<uint> _labels;

    public CodeRegion(Instruction[] instructions, uint? functionStart)
    {
        _instructions = instructions;
        FunctionStart = functionStart;
        _labels = [];
        if (instructions.Length == 0) return;
        var start = (uint)instructions[0].IP;
        var end = (uint)instructions[^1].NextIP;
        foreach (ref readonly var i in instructions.AsSpan())
        {
            if (!IsDirectBranch(i)) continue;
            var target = i.NearBranchTarget;
            if (target >= start && target < end) _labels.Add((uint)target);
        }
    }

    public ReadOnlySpan<Instruction> Instructions => _instructions;
    public int Count => _instructions.Length;
    public uint? FunctionStart { get; }

    public ref readonly Instruction this[int index] => ref _instructions[index];

    public bool IsLabel(uint rva) => _labels.Contains(rva);

    /// <summary>Index of the instruction starting exactly at <paramref name="rva"/>, or -1.</summary>
    public int IndexOf(uint rva)
    {
        int lo = 0, hi = _instructions.Length - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            var ip = _instructions[mid].IP;
            if (ip == rva) return mid;
            if (ip < rva) lo = mid + 1; else hi = mid - 1;
        }
        return -1;
    }

    /// <summary>Direct near jumps, conditional jumps, calls (a called address is a function entry) and loop/jrcxz.</summary>
    public static bool IsDirectBranch(in Instruction i) =>
        i.Op0Kind is OpKind.NearBranch16 or OpKind.NearBranch32 or OpKind.NearBranch64;
}

/// <summary>Decodes regions of a <see cref="CodeImage"/>: whole functions (x64 .pdata) or validated windows.</summary>
internal sealed class RegionDecoder
{
    /// <summary>Bytes decoded backwards from a site when the function start is unknown, and forward after it.</summary>
    public const int Window = 256;
    /// <summary>Functions longer than this are treated as unknown-start (decode a window instead).</summary>
    public const int MaxFunctionBytes = 256 << 10;

    private readonly CodeImage _code;
    private readonly Dictionary<uint, CodeRegion?> _functions = [];

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
                region = new CodeRegion(Decode(section, f.Begin, end, stopAtInvalid: true), f.Begin);
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
            if (region?.FunctionStart == f.Begin) return region;
        }
        var end = (uint)Math.Min((ulong)start + (uint)length, section.EndRva);
        return new CodeRegion(Decode(section, start, end, stopAtInvalid: true), null);
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
            var prefix = Decode(section, start, site, stopAtInvalid: true, mustEndAt: site);
            if (prefix is null) continue;
            var rest = Decode(section, site, after, stopAtInvalid: true);
            if (rest.Length == 0 || rest[0].IP != site) return null;
            return new CodeRegion([.. prefix, .. rest], null);
        }
        return null;
    }

    // A site at the very start of its section: nothing before it to validate against.
    private CodeRegion? Whole(CodeSection section, uint site, uint after)
    {
        var rest = Decode(section, site, after, stopAtInvalid: true);
        return rest.Length == 0 ? null : new CodeRegion(rest, null);
    }

    private Instruction[] Decode(CodeSection section, uint start, uint end, bool stopAtInvalid) =>
        Decode(section, start, end, stopAtInvalid, mustEndAt: null)!;

    /// <summary>Null when <paramref name="mustEndAt"/> is given and the decoding does not land exactly on it.</summary>
    private Instruction[]? Decode(CodeSection section, uint start, uint end, bool stopAtInvalid, uint? mustEndAt)
    {
        if (start < section.Rva || end > section.EndRva || end < start) return mustEndAt is null ? [] : null;
        var offset = (int)(start - section.Rva);
        var length = (int)(end - start);
        // Let the last instruction run past `end` (up to 15 bytes), not past the section.
        var readable = (int)Math.Min((long)length + 15, section.Bytes.Length - offset);
        var decoder = Decoder.Create(_code.Bitness, new ByteArrayCodeReader(section.Bytes, offset, readable), start, DecoderOptions.None);
        var list = new List<Instruction>(Math.Max(4, length / 4));
        while (decoder.IP < end)
        {
            decoder.Decode(out var instruction);
            if (instruction.IsInvalid)
            {
                if (mustEndAt is not null) { Count(list.Count); return null; }
                if (stopAtInvalid) break;
            }
            list.Add(instruction);
        }
        Count(list.Count);
        if (mustEndAt is { } must && decoder.IP != must) return null;
        return [.. list];
    }

    private void Count(int n)
    {
        InstructionsDecoded += n;
        CodeStats.AddInstructions(n);
        CodeStats.AddRegion();
    }
}
