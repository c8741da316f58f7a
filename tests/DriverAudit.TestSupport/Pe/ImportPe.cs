using System.Buffers.Binary;
using System.Text;

namespace DriverAudit.TestSupport;

/// <summary>
/// A <see cref="MiniPe"/> driver with an import table laid out like MSVC's: the IAT alone in a writable data
/// section (".idata" at RVA 0x2000), the descriptors, lookup tables and names in a discardable INIT section
/// (RVA 0x3000) that tests zero as Windows does after DriverEntry. Data directory 12 is optional.
/// </summary>
public static class ImportPe
{
    public const uint IatRva = 0x2000, InitRva = 0x3000;

    public static byte[] Build(bool is64, uint timeDateStamp, bool setIatDirectory, params (string Dll, string[] Names)[] imports)
    {
        var ptr = is64 ? 8 : 4;
        var slots = imports.Sum(i => i.Names.Length + 1);
        var iat = new byte[slots * ptr];
        var init = new MemoryStream();
        var descriptorsSize = (imports.Length + 1) * 20;
        init.Write(new byte[descriptorsSize]);
        var intAt = (uint)init.Length;
        init.Write(new byte[slots * ptr]);
        var initBytes = new List<(int At, byte[] Data)>();
        var descriptors = new byte[descriptorsSize];
        var slot = 0;
        var lookup = new byte[slots * ptr];
        for (var d = 0; d < imports.Length; d++)
        {
            var firstSlot = slot;
            foreach (var name in imports[d].Names)
            {
                var hintName = InitRva + (uint)init.Length;
                init.Write(new byte[2]);
                init.Write(Encoding.ASCII.GetBytes(name + "\0"));
                if (init.Length % 2 != 0) init.WriteByte(0);
                WritePtr(iat, slot * ptr, hintName, is64);
                WritePtr(lookup, slot * ptr, hintName, is64);
                slot++;
            }
            slot++; // null terminator of this DLL's group
            var dllName = InitRva + (uint)init.Length;
            init.Write(Encoding.ASCII.GetBytes(imports[d].Dll + "\0"));
            var desc = descriptors.AsSpan(d * 20);
            BinaryPrimitives.WriteUInt32LittleEndian(desc, InitRva + intAt + (uint)(firstSlot * ptr));
            BinaryPrimitives.WriteUInt32LittleEndian(desc[12..], dllName);
            BinaryPrimitives.WriteUInt32LittleEndian(desc[16..], IatRva + (uint)(firstSlot * ptr));
        }
        var initData = init.ToArray();
        descriptors.CopyTo(initData, 0);
        lookup.CopyTo(initData, (int)intAt);

        var pe = MiniPe.Builder(is64, 0, timeDateStamp, 0x1234,
            new MiniSection(".text", 0x1000, MiniPe.Pattern(0x300, 11)),
            new MiniSection(".idata", IatRva, iat, MiniSection.WritableData),
            new MiniSection("INIT", InitRva, initData, MiniSection.DiscardableCode));
        pe.Directory(1, InitRva, (uint)descriptorsSize);
        if (setIatDirectory) pe.Directory(12, IatRva, (uint)iat.Length);
        return pe.Build().File;
    }

    private static void WritePtr(byte[] b, int at, ulong v, bool is64)
    {
        if (is64) BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at), v);
        else BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), (uint)v);
    }
}
