using System.Buffers.Binary;
using System.Text;
using DriverAudit.Scanner.Images;

namespace DriverAudit.Scanner.Pe;

/// <summary>One IMAGE_DEBUG_DIRECTORY entry.</summary>
internal sealed record PeDebugEntry(uint Type, uint TimeDateStamp, uint SizeOfData, uint AddressOfRawData, uint PointerToRawData)
{
    public const uint CodeViewType = 2;
}

/// <summary>CodeView RSDS record: what a symbol server needs to find the PDB.</summary>
internal sealed record PeCodeView(Guid Guid, uint Age, string PdbPath);

internal sealed record PeDebugInfo(PeTableStatus Status, IReadOnlyList<PeDebugEntry> Entries, PeCodeView? CodeView)
{
    public static PeDebugInfo Absent { get; } = new(PeTableStatus.Absent, [], null);
}

/// <summary>Reads directory 6 and the first CodeView RSDS record.</summary>
internal static class PeDebugReader
{
    public const int MaxEntries = 64;
    private const int EntrySize = 28;
    private const int MaxPdbPath = 1024;

    public static PeDebugInfo Read(PeImage image)
    {
        var dir = image.GetDirectory(6);
        if (dir.VirtualAddress == 0 || dir.Size == 0) return PeDebugInfo.Absent;
        var count = dir.Size / EntrySize;
        var status = PeTableStatus.Ok;
        if (count > MaxEntries)
        {
            image.Diagnose(PeDiagnosticCodes.DebugCountCapped, $"debug directory size 0x{dir.Size:x} declares {count} entries; reading at most {MaxEntries}");
            count = MaxEntries;
            status = PeTableStatus.Incomplete;
        }
        Span<byte> buffer = stackalloc byte[MaxEntries * EntrySize];
        var bytes = buffer[..(int)(count * EntrySize)];
        var got = image.ReadRva(dir.VirtualAddress, bytes) / EntrySize;
        if (got == 0)
        {
            image.Diagnose(PeDiagnosticCodes.DebugDirectoryUnreadable, $"debug directory at RVA 0x{dir.VirtualAddress:x} is outside the image or on a missing page");
            return new PeDebugInfo(PeTableStatus.Unreadable, [], null);
        }
        if (got < count)
        {
            image.Diagnose(PeDiagnosticCodes.DebugDirectoryUnreadable, $"debug directory at RVA 0x{dir.VirtualAddress:x}: only {got} of {count} entries readable");
            status = PeTableStatus.Incomplete;
        }
        var entries = new PeDebugEntry[got];
        PeCodeView? codeView = null;
        for (var i = 0; i < got; i++)
        {
            var e = bytes.Slice(i * EntrySize, EntrySize);
            entries[i] = new PeDebugEntry(
                BinaryPrimitives.ReadUInt32LittleEndian(e[12..]), BinaryPrimitives.ReadUInt32LittleEndian(e[4..]),
                BinaryPrimitives.ReadUInt32LittleEndian(e[16..]), BinaryPrimitives.ReadUInt32LittleEndian(e[20..]),
                BinaryPrimitives.ReadUInt32LittleEndian(e[24..]));
            if (codeView is null && entries[i].Type == PeDebugEntry.CodeViewType)
                codeView = ReadCodeView(image, entries[i]);
        }
        return new PeDebugInfo(status, entries, codeView);
    }

    private static PeCodeView? ReadCodeView(PeImage image, PeDebugEntry entry)
    {
        if (entry.SizeOfData < 24) return null;
        var length = (int)Math.Min(entry.SizeOfData, 24u + MaxPdbPath);
        Span<byte> data = stackalloc byte[24 + MaxPdbPath];
        data = data[..length];
        int got;
        if (entry.AddressOfRawData != 0)
            got = image.ReadRva(entry.AddressOfRawData, data);
        else if (image.Layout == ImageLayout.File && entry.PointerToRawData != 0)
            got = image.ReadRaw(entry.PointerToRawData, data); // unmapped debug data: file offset only
        else
            got = 0;
        if (got < 24 || BinaryPrimitives.ReadUInt32LittleEndian(data) != 0x53445352) // 'RSDS'
        {
            if (got < 24) image.Diagnose(PeDiagnosticCodes.CodeViewUnreadable, $"CodeView data at RVA 0x{entry.AddressOfRawData:x} cannot be read");
            return null;
        }
        var guid = new Guid(data.Slice(4, 16));
        var age = BinaryPrimitives.ReadUInt32LittleEndian(data[20..]);
        var path = data[24..got];
        var nul = path.IndexOf((byte)0);
        if (nul >= 0) path = path[..nul];
        else image.Diagnose(PeDiagnosticCodes.NameUnterminated, "CodeView PDB path has no NUL; truncated");
        return new PeCodeView(guid, age, Encoding.UTF8.GetString(path));
    }
}
