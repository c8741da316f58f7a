using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace DriverAudit.Scanner.Pe;

/// <summary>One StringFileInfo entry; <paramref name="Table"/> is the string table key, e.g. "040904b0".</summary>
internal sealed record PeVersionString(string Table, string Key, string Value);

/// <summary>The RT_VERSION resource: fixed file/product version and the StringFileInfo strings in file order.</summary>
internal sealed record PeVersionInfo(PeTableStatus Status, string? FileVersion, string? ProductVersion, IReadOnlyList<PeVersionString> Strings)
{
    public static PeVersionInfo Absent { get; } = new(PeTableStatus.Absent, null, null, []);

    /// <summary>First value for <paramref name="key"/> (e.g. "CompanyName"), ordinal comparison.</summary>
    public string? GetString(string key)
    {
        foreach (var s in Strings)
            if (string.Equals(s.Key, key, StringComparison.Ordinal)) return s.Value;
        return null;
    }
}

/// <summary>Finds RT_VERSION in the resource tree (directory 2) and parses VS_VERSIONINFO.</summary>
internal static class PeVersionReader
{
    public const int RtVersion = 16;
    public const int MaxEntriesPerDirectory = 4096;
    public const int MaxVersionSize = 0x10000;
    public const int MaxStrings = 1024;
    private const int MaxBlockDepth = 4;

    public static PeVersionInfo Read(PeImage image)
    {
        var dir = image.GetDirectory(2);
        if (dir.VirtualAddress == 0) return PeVersionInfo.Absent;
        var root = dir.VirtualAddress;
        Span<uint> visited = stackalloc uint[3];
        var depth = 0;
        var complete = true;

        // Three fixed levels: type (RT_VERSION) -> name (first) -> language (first). Each step must go to a
        // directory not seen before, so a tree that loops back on itself is diagnosed, not walked forever.
        uint current = 0;
        uint dataEntry = 0;
        for (var level = 0; level < 3; level++)
        {
            foreach (var v in visited[..depth])
            {
                if (v == current)
                {
                    image.Diagnose(PeDiagnosticCodes.ResourceLoop, $"resource directory at offset 0x{current:x} is reached twice (loop)");
                    return new PeVersionInfo(PeTableStatus.Unreadable, null, null, []);
                }
            }
            visited[depth++] = current;
            var found = FindEntry(image, root, current, level == 0 ? RtVersion : -1, ref complete, out var target, out var isDirectory);
            if (found == EntryLookup.Unreadable) return new PeVersionInfo(PeTableStatus.Unreadable, null, null, []);
            if (found == EntryLookup.NotFound) return complete ? PeVersionInfo.Absent : new PeVersionInfo(PeTableStatus.Incomplete, null, null, []);
            if (level < 2 && !isDirectory || level == 2 && isDirectory)
            {
                image.Diagnose(PeDiagnosticCodes.ResourceUnreadable, $"resource tree level {level + 1} entry points to a {(isDirectory ? "directory" : "data entry")} where the other was expected");
                return new PeVersionInfo(PeTableStatus.Unreadable, null, null, []);
            }
            if (level < 2) current = target; else dataEntry = target;
        }

        Span<byte> data = stackalloc byte[16];
        if (!image.TryReadRva(root + dataEntry, data[..8]))
        {
            image.Diagnose(PeDiagnosticCodes.ResourceUnreadable, $"resource data entry at offset 0x{dataEntry:x} cannot be read");
            return new PeVersionInfo(PeTableStatus.Unreadable, null, null, []);
        }
        var rva = BinaryPrimitives.ReadUInt32LittleEndian(data);
        var size = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(data[4..]), MaxVersionSize);
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(size, 1));
        try
        {
            var got = image.ReadRva(rva, buffer.AsSpan(0, size));
            if (got < size)
            {
                image.Diagnose(PeDiagnosticCodes.ResourceUnreadable, $"version resource at RVA 0x{rva:x}: only {got} of {size} bytes readable");
                complete = false;
            }
            return ParseVersionInfo(image, buffer.AsSpan(0, got), complete);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private enum EntryLookup { Found, NotFound, Unreadable }

    /// <summary>Finds the entry with integer id <paramref name="id"/> (or the first entry when id is -1) in one directory.</summary>
    private static EntryLookup FindEntry(PeImage image, uint root, uint directoryOffset, int id, ref bool complete, out uint target, out bool isDirectory)
    {
        target = 0;
        isDirectory = false;
        Span<byte> header = stackalloc byte[16];
        var at = root + directoryOffset;
        if (!image.TryReadRva(at, header))
        {
            image.Diagnose(PeDiagnosticCodes.ResourceUnreadable, $"resource directory at RVA 0x{at:x} is outside the image or on a missing page");
            return EntryLookup.Unreadable;
        }
        var declared = (uint)BinaryPrimitives.ReadUInt16LittleEndian(header[12..]) + BinaryPrimitives.ReadUInt16LittleEndian(header[14..]);
        var count = Math.Min(declared, Math.Min((uint)MaxEntriesPerDirectory, image.SpanLimit(at + 16) / 8));
        if (count < declared)
        {
            image.Diagnose(PeDiagnosticCodes.ResourceCountCapped, $"resource directory at RVA 0x{at:x} declares {declared} entries; reading {count}");
            complete = false;
        }
        Span<byte> chunk = stackalloc byte[64 * 8];
        for (uint i = 0; i < count;)
        {
            var want = (int)Math.Min(64, count - i);
            var got = image.ReadRva(at + 16 + i * 8, chunk[..(want * 8)]) / 8;
            for (var k = 0; k < got; k++, i++)
            {
                var nameOrId = BinaryPrimitives.ReadUInt32LittleEndian(chunk[(k * 8)..]);
                var offset = BinaryPrimitives.ReadUInt32LittleEndian(chunk[(k * 8 + 4)..]);
                if (id >= 0 && ((nameOrId & 0x80000000) != 0 || nameOrId != (uint)id)) continue;
                target = offset & 0x7FFFFFFF;
                isDirectory = (offset & 0x80000000) != 0;
                return EntryLookup.Found;
            }
            if (got < want)
            {
                image.Diagnose(PeDiagnosticCodes.ResourceUnreadable, $"resource directory entries at RVA 0x{at:x} cannot be read after {i}");
                complete = false;
                break;
            }
        }
        return EntryLookup.NotFound;
    }

    // ---- VS_VERSIONINFO: nested {wLength, wValueLength, wType, szKey, pad, Value, pad, Children}

    private readonly ref struct Block(int start, int end, int valueLength, string key, int valueStart)
    {
        public int Start { get; } = start;
        public int End { get; } = end;
        public int ValueLength { get; } = valueLength;
        public string Key { get; } = key;
        public int ValueStart { get; } = valueStart;
    }

    private static PeVersionInfo ParseVersionInfo(PeImage image, ReadOnlySpan<byte> data, bool complete)
    {
        if (!TryBlock(data, 0, out var root) || root.Key != "VS_VERSION_INFO")
        {
            image.Diagnose(PeDiagnosticCodes.VersionInfoMalformed, "version resource does not start with a VS_VERSION_INFO block");
            return new PeVersionInfo(PeTableStatus.Unreadable, null, null, []);
        }
        string? fileVersion = null, productVersion = null;
        var fixedInfo = root.ValueStart + 52 <= root.End && root.ValueLength >= 52 ? data.Slice(root.ValueStart, 52) : default;
        if (fixedInfo.Length == 52 && BinaryPrimitives.ReadUInt32LittleEndian(fixedInfo) == 0xFEEF04BD)
        {
            fileVersion = Version(fixedInfo[8..]);
            productVersion = Version(fixedInfo[16..]);
        }
        var strings = new List<PeVersionString>();
        var childrenStart = Align4(root.ValueStart + root.ValueLength);
        foreach (var child in Children(data, childrenStart, root.End))
        {
            if (!TryBlock(data, child, out var fileInfo) || fileInfo.Key != "StringFileInfo") continue;
            foreach (var tableAt in Children(data, Align4(fileInfo.ValueStart), fileInfo.End))
            {
                if (!TryBlock(data, tableAt, out var table)) break;
                foreach (var stringAt in Children(data, Align4(table.ValueStart), table.End))
                {
                    if (!TryBlock(data, stringAt, out var s)) break;
                    if (strings.Count == MaxStrings) { complete = false; break; }
                    strings.Add(new PeVersionString(table.Key, s.Key, Utf16Z(data[Math.Min(s.ValueStart, s.End)..s.End])));
                }
            }
        }
        return new PeVersionInfo(complete ? PeTableStatus.Ok : PeTableStatus.Incomplete, fileVersion, productVersion, strings);
    }

    /// <summary>Offsets of the child blocks in [start, end); every step moves forward, so it always ends.</summary>
    private static List<int> Children(ReadOnlySpan<byte> data, int start, int end)
    {
        var result = new List<int>();
        var at = start;
        while (at + 6 <= end && result.Count < MaxStrings)
        {
            var length = BinaryPrimitives.ReadUInt16LittleEndian(data[at..]);
            if (length < 6) break;
            result.Add(at);
            at = Align4(at + length);
        }
        return result;
    }

    private static bool TryBlock(ReadOnlySpan<byte> data, int start, out Block block)
    {
        block = default;
        if (start < 0 || start + 6 > data.Length) return false;
        int length = BinaryPrimitives.ReadUInt16LittleEndian(data[start..]);
        if (length < 6) return false;
        var end = Math.Min(start + length, data.Length);
        int valueLength = BinaryPrimitives.ReadUInt16LittleEndian(data[(start + 2)..]);
        var keyStart = start + 6;
        var keyChars = MemoryMarshal.Cast<byte, char>(data[keyStart..(keyStart + ((end - keyStart) & ~1))]);
        var nul = keyChars.IndexOf('\0');
        if (nul < 0) return false;
        var key = new string(keyChars[..nul]);
        var valueStart = Align4(keyStart + (nul + 1) * 2);
        block = new Block(start, end, valueLength, key, Math.Min(valueStart, end));
        return true;
    }

    private static string Utf16Z(ReadOnlySpan<byte> bytes)
    {
        var chars = MemoryMarshal.Cast<byte, char>(bytes[..(bytes.Length & ~1)]);
        var nul = chars.IndexOf('\0');
        return new string(nul >= 0 ? chars[..nul] : chars);
    }

    private static string Version(ReadOnlySpan<byte> msls)
    {
        var ms = BinaryPrimitives.ReadUInt32LittleEndian(msls);
        var ls = BinaryPrimitives.ReadUInt32LittleEndian(msls[4..]);
        return $"{ms >> 16}.{ms & 0xFFFF}.{ls >> 16}.{ls & 0xFFFF}";
    }

    private static int Align4(int value) => (value + 3) & ~3;
}
