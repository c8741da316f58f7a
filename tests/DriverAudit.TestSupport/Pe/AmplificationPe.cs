using System.Buffers.Binary;
using System.Text;

namespace DriverAudit.TestSupport;

/// <summary>
/// Builds the section-amplification PE of issue 16 from a real fixture: its own sections kept (moved behind a
/// larger header), the body padded to <paramref name="bodyBytes"/>, and section headers added up to
/// <see cref="DriverAudit.Scanner.Pe.PeImage.MaxSections"/>, each mapping the whole body at a new RVA (alternately code and data).
/// A pass that reads every section header's data costs headers × body; the cost model must make it one body.
/// </summary>
public static class AmplificationPe
{
    public static byte[] Build(byte[] fixture, int sections = 1024, int bodyBytes = 1 << 20)
    {
        var lfanew = BinaryPrimitives.ReadInt32LittleEndian(fixture.AsSpan(0x3C));
        var coff = lfanew + 4;
        var count = BinaryPrimitives.ReadUInt16LittleEndian(fixture.AsSpan(coff + 2));
        var optSize = BinaryPrimitives.ReadUInt16LittleEndian(fixture.AsSpan(coff + 16));
        var opt = coff + 20;
        var table = opt + optSize;
        var firstRaw = Enumerable.Range(0, count).Select(i => BinaryPrimitives.ReadUInt32LittleEndian(fixture.AsSpan(table + 40 * i + 20))).Where(p => p != 0).Min();
        var sizeOfImage = BinaryPrimitives.ReadUInt32LittleEndian(fixture.AsSpan(opt + 56));

        var headers = Align((uint)(table + 40 * sections), 0x200);
        var delta = headers - firstRaw;
        var body = new byte[Math.Max(bodyBytes, fixture.Length - (int)firstRaw)];
        fixture.AsSpan((int)firstRaw).CopyTo(body);
        // Padding that both passes work on: printable text (strings) and call-like bytes (disassembly).
        var filler = Encoding.ASCII.GetBytes("\\Device\\Amplified\xE8\x00\x00\x00\x00\x48\x8B\x05\x10\x00\x00\x00");
        for (var at = fixture.Length - (int)firstRaw; at < body.Length; at++) body[at] = filler[at % filler.Length];

        var file = new byte[headers + body.Length];
        fixture.AsSpan(0, table).CopyTo(file);
        body.CopyTo(file.AsSpan((int)headers));
        for (var i = 0; i < count; i++)
        {
            var h = file.AsSpan(table + 40 * i, 40);
            fixture.AsSpan(table + 40 * i, 40).CopyTo(h);
            var raw = BinaryPrimitives.ReadUInt32LittleEndian(h[20..]);
            if (raw != 0) BinaryPrimitives.WriteUInt32LittleEndian(h[20..], raw + delta);
        }
        var span = Align((uint)body.Length, 0x1000);
        var rva = Align(sizeOfImage, 0x1000);
        for (var i = count; i < sections; i++, rva += span)
        {
            var h = file.AsSpan(table + 40 * i, 40);
            Encoding.ASCII.GetBytes($".a{i:x}").CopyTo(h);
            BinaryPrimitives.WriteUInt32LittleEndian(h[8..], (uint)body.Length);   // VirtualSize
            BinaryPrimitives.WriteUInt32LittleEndian(h[12..], rva);                // VirtualAddress
            BinaryPrimitives.WriteUInt32LittleEndian(h[16..], (uint)body.Length);  // SizeOfRawData
            BinaryPrimitives.WriteUInt32LittleEndian(h[20..], headers);            // PointerToRawData: the whole body
            BinaryPrimitives.WriteUInt32LittleEndian(h[36..], i % 2 == 0 ? 0x60000020u : 0x40000040u);
        }
        BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(coff + 2), (ushort)sections);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(opt + 56), rva);     // SizeOfImage
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(opt + 60), headers); // SizeOfHeaders
        return file;
    }

    private static uint Align(uint value, uint alignment) => (value + alignment - 1) / alignment * alignment;
}
