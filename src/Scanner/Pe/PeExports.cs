using System.Buffers;
using System.Buffers.Binary;

namespace DriverAudit.Scanner.Pe;

/// <summary>One export. <paramref name="Forwarder"/> is set when the RVA points inside the export directory
/// (the loader then reads "MODULE.Name" or "MODULE.#ord" there instead of code).</summary>
internal sealed record PeExport(string? Name, int Ordinal, uint Rva, string? Forwarder)
{
    public bool IsForwarder => Forwarder is not null;
}

/// <summary>
/// The export table (directory 0) with lookups by name, by ordinal and by RVA. Exports are ordered by ordinal,
/// then name (an ordinal with several names appears once per name); unnamed exports with RVA 0 are omitted.
/// </summary>
internal sealed class PeExports
{
    private readonly PeExport[] _all;
    private readonly PeExport[] _byName; // named only, ordinal string order
    private readonly PeExport[] _byRva;  // non-forwarders, by RVA then named-first then ordinal

    internal PeExports(PeTableStatus status, string? dllName, uint ordinalBase, PeExport[] all)
    {
        Status = status;
        DllName = dllName;
        OrdinalBase = ordinalBase;
        Array.Sort(all, static (a, b) => a.Ordinal != b.Ordinal ? a.Ordinal.CompareTo(b.Ordinal) : string.CompareOrdinal(a.Name, b.Name));
        _all = all;
        var named = 0;
        var code = 0;
        foreach (var e in all)
        {
            if (e.Name is not null) named++;
            if (e.Forwarder is null) code++;
        }
        _byName = new PeExport[named];
        _byRva = new PeExport[code];
        named = code = 0;
        foreach (var e in all)
        {
            if (e.Name is not null) _byName[named++] = e;
            if (e.Forwarder is null) _byRva[code++] = e;
        }
        Array.Sort(_byName, static (a, b) => string.CompareOrdinal(a.Name, b.Name));
        Array.Sort(_byRva, static (a, b) =>
            a.Rva != b.Rva ? a.Rva.CompareTo(b.Rva)
            : (a.Name is null) != (b.Name is null) ? (a.Name is null ? 1 : -1)
            : a.Ordinal != b.Ordinal ? a.Ordinal.CompareTo(b.Ordinal)
            : string.CompareOrdinal(a.Name, b.Name));
    }

    public static PeExports Empty(PeTableStatus status) => new(status, null, 0, []);

    public PeTableStatus Status { get; }
    /// <summary>The DLL name recorded in the export directory.</summary>
    public string? DllName { get; }
    public uint OrdinalBase { get; }
    public IReadOnlyList<PeExport> All => _all;

    public PeExport? FindByName(string name)
    {
        int lo = 0, hi = _byName.Length - 1;
        while (lo <= hi)
        {
            var mid = lo + ((hi - lo) >> 1);
            var c = string.CompareOrdinal(_byName[mid].Name, name);
            if (c == 0) return _byName[mid];
            if (c < 0) lo = mid + 1; else hi = mid - 1;
        }
        return null;
    }

    public PeExport? FindByOrdinal(int ordinal)
    {
        int lo = 0, hi = _all.Length - 1;
        while (lo <= hi)
        {
            var mid = lo + ((hi - lo) >> 1);
            var o = _all[mid].Ordinal;
            if (o == ordinal)
            {
                while (mid > 0 && _all[mid - 1].Ordinal == ordinal) mid--; // first name of that ordinal
                return _all[mid];
            }
            if (o < ordinal) lo = mid + 1; else hi = mid - 1;
        }
        return null;
    }

    /// <summary>The (non-forwarder) export whose RVA is exactly <paramref name="rva"/>; a named one when aliases share it.</summary>
    public PeExport? FindByRva(uint rva)
    {
        int lo = 0, hi = _byRva.Length - 1, found = -1;
        while (lo <= hi)
        {
            var mid = lo + ((hi - lo) >> 1);
            var r = _byRva[mid].Rva;
            if (r >= rva) { if (r == rva) found = mid; hi = mid - 1; } else lo = mid + 1;
        }
        return found < 0 ? null : _byRva[found];
    }
}

/// <summary>Reads directory 0.</summary>
internal static class PeExportReader
{
    /// <summary>Ordinals are 16-bit: more functions than that cannot be addressed.</summary>
    public const int MaxFunctions = 0x10000;
    public const int MaxNames = 0x10000;
    public const int MaxNameLength = 1024;

    public static PeExports Read(PeImage image)
    {
        var dir = image.GetDirectory(0);
        if (dir.VirtualAddress == 0) return PeExports.Empty(PeTableStatus.Absent);
        Span<byte> d = stackalloc byte[40];
        if (!image.TryReadRva(dir.VirtualAddress, d))
        {
            image.Diagnose(PeDiagnosticCodes.ExportTableUnreadable, $"export directory at RVA 0x{dir.VirtualAddress:x} is outside the image or on a missing page");
            return PeExports.Empty(PeTableStatus.Unreadable);
        }
        var complete = true;
        var nameRva = Le32(d, 12);
        var ordinalBase = Le32(d, 16);
        var numberOfFunctions = Le32(d, 20);
        var numberOfNames = Le32(d, 24);
        var functionsRva = Le32(d, 28);
        var namesRva = Le32(d, 32);
        var ordinalsRva = Le32(d, 36);
        string? dllName = null;
        if (nameRva != 0)
        {
            var n = image.ReadAsciiZ(nameRva, MaxNameLength);
            dllName = n.Value;
            if (n.Status != PeStringStatus.Ok)
            {
                image.Diagnose(PeDiagnosticCodes.ExportNameUnreadable, $"export DLL name at RVA 0x{nameRva:x} is {(n.Status == PeStringStatus.Unterminated ? "unterminated" : "unreadable")}");
                complete = false;
            }
        }

        var functionCount = Capped(image, numberOfFunctions, functionsRva, 4, MaxFunctions, "NumberOfFunctions", ref complete);
        var nameCount = Capped(image, numberOfNames, namesRva, 4, MaxNames, "NumberOfNames", ref complete);
        nameCount = Math.Min(nameCount, Capped(image, numberOfNames, ordinalsRva, 2, MaxNames, "NumberOfNames (ordinal array)", ref complete));

        var functions = ArrayPool<uint>.Shared.Rent(Math.Max(functionCount, 1));
        var names = ArrayPool<uint>.Shared.Rent(Math.Max(nameCount, 1));
        var ordinals = ArrayPool<ushort>.Shared.Rent(Math.Max(nameCount, 1));
        var named = ArrayPool<bool>.Shared.Rent(Math.Max(functionCount, 1));
        try
        {
            functionCount = ReadArray(image, functionsRva, functionCount, 4, functions.AsSpan(), null, "AddressOfFunctions", ref complete);
            nameCount = ReadArray(image, namesRva, nameCount, 4, names.AsSpan(), null, "AddressOfNames", ref complete);
            nameCount = ReadArray(image, ordinalsRva, nameCount, 2, null, ordinals.AsSpan(), "AddressOfNameOrdinals", ref complete);
            Array.Clear(named, 0, functionCount);

            var result = new List<PeExport>(functionCount);
            var dirEnd = (ulong)dir.VirtualAddress + dir.Size;
            for (var i = 0; i < nameCount; i++)
            {
                int index = ordinals[i];
                if (index >= functionCount) continue; // names an ordinal with no function: the loader would fail too
                var name = image.ReadAsciiZ(names[i], MaxNameLength);
                if (name.Status != PeStringStatus.Ok)
                {
                    image.Diagnose(PeDiagnosticCodes.ExportNameUnreadable, $"export name {i} at RVA 0x{names[i]:x} is {(name.Status == PeStringStatus.Unterminated ? "unterminated; truncated" : "unreadable")}");
                    complete = false;
                    if (name.Value is null) continue;
                }
                named[index] = true;
                result.Add(Make(image, name.Value, index, functions[index], dir.VirtualAddress, dirEnd, ordinalBase, ref complete));
            }
            for (var index = 0; index < functionCount; index++)
            {
                if (named[index] || functions[index] == 0) continue;
                result.Add(Make(image, null, index, functions[index], dir.VirtualAddress, dirEnd, ordinalBase, ref complete));
            }
            return new PeExports(complete ? PeTableStatus.Ok : PeTableStatus.Incomplete, dllName, ordinalBase, result.ToArray());
        }
        finally
        {
            ArrayPool<uint>.Shared.Return(functions);
            ArrayPool<uint>.Shared.Return(names);
            ArrayPool<ushort>.Shared.Return(ordinals);
            ArrayPool<bool>.Shared.Return(named);
        }
    }

    private static PeExport Make(PeImage image, string? name, int index, uint rva, uint dirStart, ulong dirEnd, uint ordinalBase, ref bool complete)
    {
        var ordinal = (int)((ordinalBase + (uint)index) & 0xFFFF_FFFF);
        string? forwarder = null;
        if (rva >= dirStart && rva < dirEnd)
        {
            var f = image.ReadAsciiZ(rva, MaxNameLength);
            if (f.Status != PeStringStatus.Ok)
            {
                image.Diagnose(PeDiagnosticCodes.ExportNameUnreadable, $"forwarder string of ordinal {ordinal} at RVA 0x{rva:x} is {(f.Status == PeStringStatus.Unterminated ? "unterminated" : "unreadable")}");
                complete = false;
            }
            forwarder = f.Value ?? "";
        }
        return new PeExport(name, ordinal, rva, forwarder);
    }

    private static int Capped(PeImage image, uint declared, uint rva, int elementSize, int max, string field, ref bool complete)
    {
        if (declared == 0) return 0;
        var fit = rva == 0 ? 0u : image.SpanLimit(rva) / (uint)elementSize;
        var count = Math.Min(Math.Min(declared, (uint)max), fit);
        if (count < declared)
        {
            image.Diagnose(PeDiagnosticCodes.ExportCountCapped, $"{field} {declared} exceeds what the table can hold; reading {count}");
            complete = false;
        }
        return (int)count;
    }

    private static int ReadArray(PeImage image, uint rva, int count, int elementSize, Span<uint> u32, Span<ushort> u16, string field, ref bool complete)
    {
        if (count == 0) return 0;
        var bytes = ArrayPool<byte>.Shared.Rent(count * elementSize);
        try
        {
            var got = image.ReadRva(rva, bytes.AsSpan(0, count * elementSize)) / elementSize;
            for (var i = 0; i < got; i++)
            {
                if (elementSize == 4) u32[i] = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(i * 4));
                else u16[i] = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(i * 2));
            }
            if (got < count)
            {
                image.Diagnose(PeDiagnosticCodes.ExportArrayUnreadable, $"{field} at RVA 0x{rva:x}: only {got} of {count} entries readable");
                complete = false;
            }
            return got;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    private static uint Le32(ReadOnlySpan<byte> s, int at) => BinaryPrimitives.ReadUInt32LittleEndian(s[at..]);
}
