using System.Buffers.Binary;

namespace DriverAudit.TestSupport;

/// <summary>One section of a <see cref="MiniPe"/>: name, RVA and raw bytes (virtual size = raw size).</summary>
public sealed record MiniSection(string Name, uint Rva, byte[] Data, uint Characteristics = MiniSection.Code)
{
    public const uint Code = 0x60000020, WritableData = 0xC0000040, ReadOnlyData = 0x40000040, DiscardableCode = 0x62000020;
}

/// <summary>
/// A minimal but well-formed PE file (file layout) with sections at fixed RVAs, written by <see cref="PeBuilder"/>:
/// enough for the dump writer to map and for the reader to find TimeDateStamp and CheckSum. No entry point, no
/// tables: use <see cref="PeBuilder"/> itself where imports, exports or other directories matter.
/// </summary>
public static class MiniPe
{
    public static byte[] Build(bool is64, uint timeDateStamp, uint checkSum, params MiniSection[] sections) =>
        Build(is64, imageBase: 0, timeDateStamp, checkSum, sections);

    /// <param name="imageBase">The preferred base: x86 code holds absolute addresses against it.</param>
    public static byte[] Build(bool is64, ulong imageBase, uint timeDateStamp, uint checkSum, MiniSection[] sections) =>
        Builder(is64, imageBase, timeDateStamp, checkSum, sections).Build().File;

    /// <summary>The builder behind <see cref="Build(bool, ulong, uint, uint, MiniSection[])"/>, for callers that add directories.</summary>
    public static PeBuilder Builder(bool is64, ulong imageBase, uint timeDateStamp, uint checkSum, params MiniSection[] sections)
    {
        if (sections.Length == 0) throw new ArgumentException("a MiniPe needs at least one section", nameof(sections));
        var builder = new PeBuilder(is64)
        {
            ImageBase = imageBase,
            TimeDateStamp = timeDateStamp,
            CheckSum = checkSum,
            Characteristics = is64 ? (ushort)0x22 : (ushort)0x102,
            DllCharacteristics = 0,
            EntryPoint = 0,
        };
        foreach (var s in sections) builder.AddSection(s.Name, s.Characteristics, s.Data, rva: s.Rva);
        return builder;
    }

    /// <summary>Deterministic, non-zero, position-dependent filler so misplaced pages are caught.</summary>
    public static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        for (var i = 0; i < length; i++) b[i] = (byte)((i * 31 + seed * 17 + (i >> 8)) % 251 + 1);
        return b;
    }
}

/// <summary>Maps a PE file (file layout) into loaded layout the way the loader does: headers, then each section at its RVA.</summary>
public static class PeLayout
{
    public static byte[] ToLoaded(byte[] file)
    {
        var span = file.AsSpan();
        var lfanew = (int)BinaryPrimitives.ReadUInt32LittleEndian(span[0x3C..]);
        var sections = BinaryPrimitives.ReadUInt16LittleEndian(span[(lfanew + 6)..]);
        var optionalSize = BinaryPrimitives.ReadUInt16LittleEndian(span[(lfanew + 20)..]);
        var oh = lfanew + 24;
        var sizeOfImage = BinaryPrimitives.ReadUInt32LittleEndian(span[(oh + 56)..]);
        var sizeOfHeaders = BinaryPrimitives.ReadUInt32LittleEndian(span[(oh + 60)..]);
        var image = new byte[sizeOfImage];
        span[..(int)Math.Min(sizeOfHeaders, (uint)file.Length)].CopyTo(image);
        var sh = oh + optionalSize;
        for (var i = 0; i < sections; i++, sh += 40)
        {
            var virtualSize = BinaryPrimitives.ReadUInt32LittleEndian(span[(sh + 8)..]);
            var rva = BinaryPrimitives.ReadUInt32LittleEndian(span[(sh + 12)..]);
            var rawSize = BinaryPrimitives.ReadUInt32LittleEndian(span[(sh + 16)..]);
            var rawPointer = BinaryPrimitives.ReadUInt32LittleEndian(span[(sh + 20)..]);
            var n = (int)Math.Min(virtualSize == 0 ? rawSize : Math.Min(virtualSize, rawSize), sizeOfImage - rva);
            span.Slice((int)rawPointer, n).CopyTo(image.AsSpan((int)rva));
        }
        return image;
    }
}
