namespace DriverAudit.Scanner.Pe;

/// <summary>One imported function, bound through one IAT slot.</summary>
/// <param name="Module">DLL name as written in the descriptor ("&lt;unreadable@0xRVA&gt;" when the name cannot be read; diagnosed).</param>
/// <param name="Name">Function name; null for an import by ordinal.</param>
/// <param name="Ordinal">Ordinal for an import by ordinal; null for an import by name.</param>
/// <param name="Hint">Hint from the hint/name entry (0 for ordinals).</param>
/// <param name="Delayed">True for delay-load imports (directory 13).</param>
/// <param name="SlotRva">RVA of the IAT slot the loader (or delay helper) writes the address into.</param>
/// <param name="DescriptorIndex">Index of the descriptor (per table) the import belongs to.</param>
internal sealed record PeImport(string Module, string? Name, int? Ordinal, ushort Hint, bool Delayed, uint SlotRva, int DescriptorIndex);

/// <summary>Imports of one kind (normal or delay-load).</summary>
/// <param name="FirstThunkRva">FirstThunk (IAT) of the first descriptor, when there is one.</param>
internal sealed record PeImportTable(PeTableStatus Status, IReadOnlyList<PeImport> Imports, uint? FirstThunkRva)
{
    public static PeImportTable Absent { get; } = new(PeTableStatus.Absent, [], null);
}

/// <summary>Reads directory 1 (import descriptors) and directory 13 (delay-load descriptors).</summary>
internal static class PeImportReader
{
    public const int MaxDescriptors = 4096;
    public const int MaxThunksPerDescriptor = 0x10000;
    public const int MaxNameLength = 512;
    private const int DescriptorSize = 20, DelayDescriptorSize = 32;
    private const int ThunkChunk = 64;

    public static PeImportTable ReadImports(PeImage image)
    {
        var dir = image.GetDirectory(1);
        if (dir.VirtualAddress == 0) return PeImportTable.Absent;
        var imports = new List<PeImport>();
        var complete = true;
        uint? firstThunk = null;
        Span<byte> d = stackalloc byte[DescriptorSize];
        var maxDescriptors = (int)Math.Min(MaxDescriptors, image.SpanLimit(dir.VirtualAddress) / DescriptorSize);
        var index = 0;
        for (; ; index++)
        {
            var at = dir.VirtualAddress + (uint)(index * DescriptorSize);
            if (index >= maxDescriptors || !image.TryReadRva(at, d))
            {
                if (index == 0)
                {
                    image.Diagnose(PeDiagnosticCodes.ImportTableUnreadable, $"import descriptor table at RVA 0x{dir.VirtualAddress:x} is outside the image or on a missing page");
                    return new PeImportTable(PeTableStatus.Unreadable, [], null);
                }
                image.Diagnose(PeDiagnosticCodes.ImportDescriptorsUnterminated, $"import descriptor table at RVA 0x{dir.VirtualAddress:x} has no readable terminator after {index} descriptors");
                complete = false;
                break;
            }
            var originalFirstThunk = Le32(d, 0);
            var nameRva = Le32(d, 12);
            var firstThunkRva = Le32(d, 16);
            if (nameRva == 0 && firstThunkRva == 0) break; // terminator (loader stops on these)
            firstThunk ??= firstThunkRva;
            var module = ReadModuleName(image, nameRva, "import", ref complete);
            var lookup = originalFirstThunk != 0 ? originalFirstThunk : firstThunkRva;
            complete &= ReadThunks(image, module, lookup, firstThunkRva, delayed: false, vaBase: 0, index, imports);
        }
        return new PeImportTable(complete ? PeTableStatus.Ok : PeTableStatus.Incomplete, imports, firstThunk);
    }

    public static PeImportTable ReadDelayImports(PeImage image)
    {
        var dir = image.GetDirectory(13);
        if (dir.VirtualAddress == 0) return PeImportTable.Absent;
        var imports = new List<PeImport>();
        var complete = true;
        uint? firstThunk = null;
        Span<byte> d = stackalloc byte[DelayDescriptorSize];
        var maxDescriptors = (int)Math.Min(MaxDescriptors, image.SpanLimit(dir.VirtualAddress) / DelayDescriptorSize);
        for (var index = 0; ; index++)
        {
            var at = dir.VirtualAddress + (uint)(index * DelayDescriptorSize);
            if (index >= maxDescriptors || !image.TryReadRva(at, d))
            {
                if (index == 0)
                {
                    image.Diagnose(PeDiagnosticCodes.DelayImportTableUnreadable, $"delay-import descriptor table at RVA 0x{dir.VirtualAddress:x} is outside the image or on a missing page");
                    return new PeImportTable(PeTableStatus.Unreadable, [], null);
                }
                image.Diagnose(PeDiagnosticCodes.ImportDescriptorsUnterminated, $"delay-import descriptor table at RVA 0x{dir.VirtualAddress:x} has no readable terminator after {index} descriptors");
                complete = false;
                break;
            }
            var attributes = Le32(d, 0);
            var rawName = Le32(d, 4);
            var rawIat = Le32(d, 12);
            var rawInt = Le32(d, 16);
            if (rawName == 0) break; // terminator
            // dlattrRva (bit 0): fields are RVAs; the old (VC6) form stores VAs, including in the name table.
            var vaBase = (attributes & 1) != 0 ? 0UL : image.ImageBase;
            if (!ToRva(rawName, vaBase, out var nameRva) || !ToRva(rawIat, vaBase, out var iatRva) || !ToRva(rawInt, vaBase, out var intRva))
            {
                image.Diagnose(PeDiagnosticCodes.DelayImportBadAddress, $"delay-import descriptor {index} holds an address below ImageBase (attributes 0x{attributes:x})");
                complete = false;
                continue;
            }
            firstThunk ??= iatRva;
            var module = ReadModuleName(image, nameRva, "delay-import", ref complete);
            complete &= ReadThunks(image, module, intRva != 0 ? intRva : iatRva, iatRva, delayed: true, vaBase, index, imports);
        }
        return new PeImportTable(complete ? PeTableStatus.Ok : PeTableStatus.Incomplete, imports, firstThunk);
    }

    private static string ReadModuleName(PeImage image, uint rva, string what, ref bool complete)
    {
        var read = image.ReadAsciiZ(rva, MaxNameLength);
        switch (read.Status)
        {
            case PeStringStatus.Ok:
                return read.Value!;
            case PeStringStatus.Unterminated:
                image.Diagnose(PeDiagnosticCodes.NameUnterminated, $"{what} module name at RVA 0x{rva:x} has no NUL; truncated");
                complete = false;
                return read.Value!;
            default:
                image.Diagnose(PeDiagnosticCodes.ImportModuleNameUnreadable, $"{what} module name at RVA 0x{rva:x} cannot be read");
                complete = false;
                return $"<unreadable@0x{rva:x}>";
        }
    }

    /// <summary>Walks one lookup (name) table in chunks; returns false when it had to stop early.</summary>
    private static bool ReadThunks(PeImage image, string module, uint lookupRva, uint slotRva, bool delayed, ulong vaBase, int descriptor, List<PeImport> output)
    {
        var size = image.Is64Bit ? 8 : 4;
        var ordinalFlag = image.Is64Bit ? 0x8000000000000000UL : 0x80000000UL;
        var cap = (int)Math.Min(MaxThunksPerDescriptor, image.SpanLimit(lookupRva) / (uint)size);
        Span<byte> chunk = stackalloc byte[ThunkChunk * 8];
        var complete = true;
        var i = 0;
        while (true)
        {
            if (i >= cap)
            {
                image.Diagnose(PeDiagnosticCodes.ImportThunksUnterminated, $"{module}: thunk array at RVA 0x{lookupRva:x} has no terminator; stopped after {i} entries");
                return false;
            }
            var want = Math.Min(ThunkChunk, cap - i);
            var span = chunk[..(want * size)];
            var got = image.ReadRva(lookupRva + (uint)(i * size), span) / size;
            if (got == 0)
            {
                image.Diagnose(PeDiagnosticCodes.ImportThunksUnreadable, $"{module}: thunk array at RVA 0x{lookupRva:x} cannot be read after {i} entries");
                return false;
            }
            for (var k = 0; k < got; k++, i++)
            {
                var entry = size == 8 ? Le64(span, k * 8) : Le32(span, k * 4);
                if (entry == 0) return complete;
                var slot = slotRva + (uint)(i * size);
                if ((entry & ordinalFlag) != 0)
                {
                    output.Add(new PeImport(module, null, (int)(entry & 0xFFFF), 0, delayed, slot, descriptor));
                    continue;
                }
                if (!ToRva(entry & (vaBase == 0 ? 0x7FFFFFFFUL : ulong.MaxValue), vaBase, out var hintName) || !image.TryReadUInt16(hintName, out var hint))
                {
                    image.Diagnose(PeDiagnosticCodes.ImportNameUnreadable, $"{module}: hint/name entry 0x{entry:x} for slot 0x{slot:x} cannot be read");
                    complete = false;
                    continue;
                }
                var name = image.ReadAsciiZ(hintName + 2, MaxNameLength);
                if (name.Status == PeStringStatus.Unreadable)
                {
                    image.Diagnose(PeDiagnosticCodes.ImportNameUnreadable, $"{module}: import name at RVA 0x{hintName + 2:x} for slot 0x{slot:x} cannot be read");
                    complete = false;
                    continue;
                }
                if (name.Status == PeStringStatus.Unterminated)
                {
                    image.Diagnose(PeDiagnosticCodes.NameUnterminated, $"{module}: import name at RVA 0x{hintName + 2:x} has no NUL; truncated");
                    complete = false;
                }
                output.Add(new PeImport(module, name.Value, null, hint, delayed, slot, descriptor));
            }
            if (got < want)
            {
                image.Diagnose(PeDiagnosticCodes.ImportThunksUnreadable, $"{module}: thunk array at RVA 0x{lookupRva:x} cannot be read after {i} entries");
                return false;
            }
        }
    }

    private static bool ToRva(ulong value, ulong vaBase, out uint rva)
    {
        rva = 0;
        if (value == 0) return true;
        if (value < vaBase) return false;
        var r = value - vaBase;
        if (r > uint.MaxValue) return false;
        rva = (uint)r;
        return true;
    }

    private static uint Le32(ReadOnlySpan<byte> s, int at) => System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(s[at..]);
    private static ulong Le64(ReadOnlySpan<byte> s, int at) => System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(s[at..]);
}
