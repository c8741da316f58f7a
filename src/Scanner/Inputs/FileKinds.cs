using System.Runtime.InteropServices;

namespace DriverAudit.Scanner.Inputs;

/// <summary>What a path names once symbolic links are followed, as stat(2) says.</summary>
internal enum FileKind { Missing, Regular, Directory, Fifo, CharacterDevice, BlockDevice, Socket, Other }

/// <summary>
/// The type of a file without opening it. Opening a FIFO for reading blocks until a writer appears, and a
/// device such as <c>/dev/zero</c> never ends, so every path that DriverAudit reads (inputs and file
/// arguments) is classified first. .NET reports FIFOs, sockets and devices as ordinary files, so on Unix this
/// asks stat(2) through the runtime's own native shim (the one System.IO uses), whose <c>Mode</c> field
/// carries the portable S_IF* type bits.
/// </summary>
internal static partial class FileKinds
{
    public static FileKind Of(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            // No FIFOs or device nodes in the file system namespace there; reparse points are followed by the open.
            if (Directory.Exists(path)) return FileKind.Directory;
            return File.Exists(path) ? FileKind.Regular : FileKind.Missing;
        }
        try
        {
            Span<byte> status = stackalloc byte[StatusBufferBytes];
            status.Clear();
            int rc;
            unsafe
            {
                fixed (byte* p = status) rc = Stat(path, p);
            }
            if (rc != 0) return FileKind.Missing;
            var mode = BitConverter.ToInt32(status.Slice(ModeOffset, 4));
            return (mode & 0xF000) switch
            {
                0x8000 => FileKind.Regular,
                0x4000 => FileKind.Directory,
                0x1000 => FileKind.Fifo,
                0x2000 => FileKind.CharacterDevice,
                0x6000 => FileKind.BlockDevice,
                0xC000 => FileKind.Socket,
                _ => FileKind.Other,
            };
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Without the shim fall back to what System.IO can tell (it cannot see FIFOs or devices).
            if (Directory.Exists(path)) return FileKind.Directory;
            return File.Exists(path) ? FileKind.Regular : FileKind.Missing;
        }
    }

    /// <summary>"a FIFO (named pipe)", "a directory"… for messages.</summary>
    public static string Describe(FileKind kind) => kind switch
    {
        FileKind.Missing => "missing",
        FileKind.Regular => "a regular file",
        FileKind.Directory => "a directory",
        FileKind.Fifo => "a FIFO (named pipe)",
        FileKind.CharacterDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        FileKind.Socket => "a socket",
        _ => "not a regular file",
    };

    // System.Native's FileStatus: int32 Flags, int32 Mode, then uid, gid, sizes and times. Only Mode is read;
    // the buffer is far larger than the struct so a future field cannot write past it.
    private const int ModeOffset = 4;
    private const int StatusBufferBytes = 512;

    [LibraryImport("libSystem.Native", EntryPoint = "SystemNative_Stat", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Stat(string path, byte* status);
}
