//! The KMDF surface ordinary drivers use beyond RHCA, checked against the framework source's
//! statuses: memory objects (`WdfMemoryCreate`, `…GetBuffer`, `…CopyToBuffer`,
//! `…CopyFromBuffer`), string objects, the version queries, `WdfDriverGlobals`, the loader's
//! driver object and its unload routine. Each call runs on a simulated CPU of a machine with a
//! minimal driver loaded.

use wdk_sim::call_unsafe_wdf_function_binding;
use wdk_sim::wdf::host::{Host, HostError, Mode};
use wdk_sim::*;

static mut DRIVER: WDFDRIVER = core::ptr::null_mut();

unsafe extern "system" fn entry(d: PDRIVER_OBJECT, r: PCUNICODE_STRING) -> NTSTATUS {
    let mut config = WDF_DRIVER_CONFIG {
        Size: u32::try_from(size_of::<WDF_DRIVER_CONFIG>()).unwrap_or(0),
        ..WDF_DRIVER_CONFIG::default()
    };
    let mut driver: WDFDRIVER = core::ptr::null_mut();
    // SAFETY: the loader's arguments and our config.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDriverCreate,
            d,
            r,
            WDF_NO_OBJECT_ATTRIBUTES,
            &raw mut config,
            &raw mut driver,
        )
    };
    // SAFETY: written once, before any test reads it, on the loading thread.
    unsafe { DRIVER = driver };
    status
}

fn boot(profile: Profile, service: &str) -> (Machine, Host) {
    let m = Machine::new(Config::with_profile(profile));
    let host = Host::load_service(&m, service, entry, Mode::Threaded).expect("load");
    (m, host)
}

fn driver() -> WDFDRIVER {
    // SAFETY: written by `entry` before the test calls this.
    unsafe { DRIVER }
}

fn tag_bytes(m: &Machine, tag: &str) -> u64 {
    m.pool_usage()
        .into_iter()
        .find(|(t, _)| t == tag)
        .map_or(0, |(_, u)| u.bytes)
}

#[test]
fn memory_objects_copy_within_bounds_with_the_frameworks_statuses() {
    let (m, host) = boot(Profile::VERIFIER, "objects");
    let tag = u32::from_le_bytes(*b"Tst1");
    let (memory, buffer) = m
        .run(move || {
            let mut memory: WDFMEMORY = core::ptr::null_mut();
            let mut buffer: PVOID = core::ptr::null_mut();
            // SAFETY: our out-parameters.
            let st = unsafe {
                call_unsafe_wdf_function_binding!(
                    WdfMemoryCreate,
                    WDF_NO_OBJECT_ATTRIBUTES,
                    _POOL_TYPE::NonPagedPoolNx,
                    tag,
                    16,
                    &raw mut memory,
                    &raw mut buffer,
                )
            };
            assert_eq!(st, STATUS_SUCCESS);
            // A zero size fails before anything is made.
            let mut none: WDFMEMORY = core::ptr::null_mut();
            // SAFETY: as above.
            let st = unsafe {
                call_unsafe_wdf_function_binding!(
                    WdfMemoryCreate,
                    WDF_NO_OBJECT_ATTRIBUTES,
                    _POOL_TYPE::NonPagedPoolNx,
                    tag,
                    0,
                    &raw mut none,
                    core::ptr::null_mut(),
                )
            };
            assert_eq!(st, STATUS_INVALID_PARAMETER);
            (memory as usize, buffer as usize)
        })
        .expect("run");
    assert_eq!(
        tag_bytes(&m, "Tst1"),
        16,
        "the buffer is pool tagged as asked"
    );
    m.run(move || {
        let memory = memory as WDFMEMORY;
        let mut size = 0usize;
        // SAFETY: our memory object.
        let b =
            unsafe { call_unsafe_wdf_function_binding!(WdfMemoryGetBuffer, memory, &raw mut size) };
        assert_eq!((b as usize, size), (buffer, 16));
        let mut src: [u8; 17] = core::array::from_fn(|i| i.to_le_bytes()[0]);
        let from = |offset: usize, n: usize, src: &mut [u8; 17]| {
            // SAFETY: `src` holds 17 bytes, at least `n`.
            unsafe {
                call_unsafe_wdf_function_binding!(
                    WdfMemoryCopyFromBuffer,
                    memory,
                    offset,
                    src.as_mut_ptr().cast(),
                    n,
                )
            }
        };
        assert_eq!(from(0, 16, &mut src), STATUS_SUCCESS);
        assert_eq!(from(0, 17, &mut src), STATUS_INVALID_BUFFER_SIZE);
        assert_eq!(from(8, 9, &mut src), STATUS_INVALID_BUFFER_SIZE);
        assert_eq!(from(16, 1, &mut src), STATUS_INVALID_BUFFER_SIZE);
        assert_eq!(from(0, 0, &mut src), STATUS_INVALID_PARAMETER);
        let mut dst = [0u8; 17];
        let to = |offset: usize, n: usize, dst: &mut [u8; 17]| {
            // SAFETY: `dst` holds 17 bytes, at least `n`.
            unsafe {
                call_unsafe_wdf_function_binding!(
                    WdfMemoryCopyToBuffer,
                    memory,
                    offset,
                    dst.as_mut_ptr().cast(),
                    n,
                )
            }
        };
        assert_eq!(to(8, 8, &mut dst), STATUS_SUCCESS);
        assert_eq!(&dst[..8], &src[8..16]);
        assert_eq!(to(8, 9, &mut dst), STATUS_BUFFER_TOO_SMALL);
        assert_eq!(to(16, 1, &mut dst), STATUS_BUFFER_TOO_SMALL);
        assert_eq!(to(0, 0, &mut dst), STATUS_INVALID_PARAMETER);
        // SAFETY: our memory object, deleted once: its buffer goes with it.
        unsafe { call_unsafe_wdf_function_binding!(WdfObjectDelete, memory.cast()) };
    })
    .expect("run");
    assert_eq!(
        tag_bytes(&m, "Tst1"),
        0,
        "deleting the object frees its buffer"
    );
    host.unload().expect("clean unload");
}

#[test]
fn memory_left_to_the_driver_is_freed_with_it() {
    let (m, host) = boot(Profile::VERIFIER, "parented");
    m.run(|| {
        let mut memory: WDFMEMORY = core::ptr::null_mut();
        // SAFETY: our out-parameter; the driver is the default parent.
        let st = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfMemoryCreate,
                WDF_NO_OBJECT_ATTRIBUTES,
                _POOL_TYPE::NonPagedPoolNx,
                0,
                100,
                &raw mut memory,
                core::ptr::null_mut(),
            )
        };
        assert_eq!(st, STATUS_SUCCESS);
    })
    .expect("run");
    // Tag 0 takes the driver's tag: the default one from the service name.
    assert_eq!(tag_bytes(&m, "pare"), 100);
    host.unload()
        .expect("the driver's children go with it, and their pool");
    assert_eq!(tag_bytes(&m, "pare"), 0);
}

#[test]
fn strings_version_queries_and_driver_globals_follow_the_framework() {
    let (m, host) = boot(Profile::COHERENT, "strings");
    m.run(|| {
        let mut text: Vec<u16> = "abc".encode_utf16().collect();
        let mut u = UNICODE_STRING {
            Length: 6,
            MaximumLength: 6,
            Buffer: text.as_mut_ptr(),
        };
        let mut s: WDFSTRING = core::ptr::null_mut();
        // SAFETY: a valid counted string and our out-parameter.
        let st = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfStringCreate,
                &raw mut u,
                WDF_NO_OBJECT_ATTRIBUTES,
                &raw mut s,
            )
        };
        assert_eq!(st, STATUS_SUCCESS);
        let mut got = UNICODE_STRING::default();
        // SAFETY: our string object and descriptor.
        unsafe { call_unsafe_wdf_function_binding!(WdfStringGetUnicodeString, s, &raw mut got) };
        // SAFETY: the framework's descriptor of the string's characters.
        let chars = unsafe { core::slice::from_raw_parts(got.Buffer, usize::from(got.Length) / 2) };
        assert_eq!(String::from_utf16_lossy(chars), "abc");
        // An odd length is refused (`FxValidateUnicodeString`).
        u.Length = 5;
        let mut bad: WDFSTRING = core::ptr::null_mut();
        // SAFETY: as above.
        let st = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfStringCreate,
                &raw mut u,
                WDF_NO_OBJECT_ATTRIBUTES,
                &raw mut bad,
            )
        };
        assert_eq!(st, STATUS_INVALID_PARAMETER);
        // SAFETY: the driver's handle and our string.
        let st = unsafe {
            call_unsafe_wdf_function_binding!(WdfDriverRetrieveVersionString, driver(), s)
        };
        assert_eq!(st, STATUS_SUCCESS);
        // SAFETY: as above.
        unsafe { call_unsafe_wdf_function_binding!(WdfStringGetUnicodeString, s, &raw mut got) };
        // SAFETY: as above.
        let chars = unsafe { core::slice::from_raw_parts(got.Buffer, usize::from(got.Length) / 2) };
        assert_eq!(
            String::from_utf16_lossy(chars),
            "Kernel Mode Driver Framework version 1.33.0"
        );
        let available = |major: u32, minor: u32, size: usize| {
            let mut p = WDF_DRIVER_VERSION_AVAILABLE_PARAMS {
                Size: u32::try_from(size).unwrap_or(0),
                MajorVersion: major,
                MinorVersion: minor,
            };
            // SAFETY: the driver's handle and our params.
            unsafe {
                call_unsafe_wdf_function_binding!(WdfDriverIsVersionAvailable, driver(), &raw mut p)
            }
        };
        let size = size_of::<WDF_DRIVER_VERSION_AVAILABLE_PARAMS>();
        assert_eq!(available(1, 33, size), 1);
        assert_eq!(available(1, 15, size), 1);
        assert_eq!(available(1, 34, size), 0);
        assert_eq!(available(2, 0, size), 0);
        assert_eq!(available(1, 33, size + 4), 0, "a wrong Size is FALSE");
        // WdfDriverGlobals names this driver (the last one created in the process may be
        // another test's: check only what is ours when it is).
        let slot = &raw const wdf::WdfDriverGlobals;
        // SAFETY: a plain read of the pointer; the globals it points at are never freed.
        let g = unsafe { slot.read() };
        assert!(!g.is_null());
    })
    .expect("run");
    host.unload().expect("unload");
}

#[test]
fn the_loader_fills_the_driver_object_and_unload_goes_through_driver_unload() {
    unsafe extern "system" fn checked(d: PDRIVER_OBJECT, r: PCUNICODE_STRING) -> NTSTATUS {
        // SAFETY: the loader's driver object.
        let object = unsafe { &*d };
        let text = |u: &UNICODE_STRING| {
            // SAFETY: the loader's counted strings.
            let c = unsafe { core::slice::from_raw_parts(u.Buffer, usize::from(u.Length) / 2) };
            String::from_utf16_lossy(c)
        };
        assert_eq!(text(&object.DriverName), "\\Driver\\loader");
        // SAFETY: the loader's extension, linked back to the object.
        let ext = unsafe { &*object.DriverExtension };
        assert_eq!(ext.DriverObject, d);
        assert_eq!(text(&ext.ServiceKeyName), "loader");
        // SAFETY: the loader's registry path.
        assert!(text(unsafe { &*r }).ends_with("\\Services\\loader"));
        assert!(
            object.DriverUnload.is_none(),
            "nothing before WdfDriverCreate"
        );
        // SAFETY: the loader's arguments.
        let st = unsafe { entry(d, r) };
        // A PnP KMDF driver: the framework takes the unload routine, AddDevice and dispatch.
        assert!(object.DriverUnload.is_some());
        assert!(ext.AddDevice.is_some());
        assert!(object.MajorFunction.iter().all(Option::is_some));
        st
    }
    let m = Machine::new(Config::with_profile(Profile::VERIFIER));
    let host = Host::load_service(&m, "loader", checked, Mode::Threaded).expect("load");
    host.unload()
        .expect("the framework's DriverUnload runs the unload");
    assert!(m.bugcheck().is_none());
}

#[test]
fn a_non_pnp_driver_without_evt_driver_unload_cannot_be_unloaded() {
    unsafe extern "system" fn non_pnp(d: PDRIVER_OBJECT, r: PCUNICODE_STRING) -> NTSTATUS {
        let mut config = WDF_DRIVER_CONFIG {
            Size: u32::try_from(size_of::<WDF_DRIVER_CONFIG>()).unwrap_or(0),
            DriverInitFlags: _WDF_DRIVER_INIT_FLAGS::WdfDriverInitNonPnpDriver.cast_unsigned(),
            ..WDF_DRIVER_CONFIG::default()
        };
        // SAFETY: the loader's arguments and our config.
        let st = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfDriverCreate,
                d,
                r,
                WDF_NO_OBJECT_ATTRIBUTES,
                &raw mut config,
                core::ptr::null_mut(),
            )
        };
        // SAFETY: the loader's driver object and its extension.
        let object = unsafe { &*d };
        assert!(
            object.DriverUnload.is_none(),
            "non-PnP without EvtDriverUnload"
        );
        // SAFETY: as above.
        assert!(unsafe { (*object.DriverExtension).AddDevice }.is_none());
        assert!(object.MajorFunction.iter().all(Option::is_some));
        st
    }
    let m = Machine::new(Config::with_profile(Profile::COHERENT));
    let host = Host::load_service(&m, "nonpnp", non_pnp, Mode::Threaded).expect("load");
    assert!(matches!(host.unload(), Err(HostError::State(_))));
}

#[test]
fn request_attributes_with_a_parent_are_the_verifiers_break() {
    unsafe extern "C" fn add(driver: WDFDRIVER, init: PWDFDEVICE_INIT) -> NTSTATUS {
        let mut a = WDF_OBJECT_ATTRIBUTES {
            Size: u32::try_from(size_of::<WDF_OBJECT_ATTRIBUTES>()).unwrap_or(0),
            ExecutionLevel: _WDF_EXECUTION_LEVEL::WdfExecutionLevelInheritFromParent,
            SynchronizationScope:
                _WDF_SYNCHRONIZATION_SCOPE::WdfSynchronizationScopeInheritFromParent,
            ParentObject: driver.cast(),
            ..WDF_OBJECT_ATTRIBUTES::default()
        };
        // SAFETY: the framework's init and our attributes; the parent is the bug.
        unsafe {
            call_unsafe_wdf_function_binding!(WdfDeviceInitSetRequestAttributes, init, &raw mut a);
        }
        STATUS_SUCCESS
    }
    unsafe extern "system" fn with_add(d: PDRIVER_OBJECT, r: PCUNICODE_STRING) -> NTSTATUS {
        let mut config = WDF_DRIVER_CONFIG {
            Size: u32::try_from(size_of::<WDF_DRIVER_CONFIG>()).unwrap_or(0),
            EvtDriverDeviceAdd: Some(add),
            ..WDF_DRIVER_CONFIG::default()
        };
        // SAFETY: the loader's arguments and our config.
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfDriverCreate,
                d,
                r,
                WDF_NO_OBJECT_ATTRIBUTES,
                &raw mut config,
                core::ptr::null_mut(),
            )
        }
    }
    let m = Machine::new(Config::with_profile(Profile::VERIFIER));
    let host = Host::load_service(&m, "reqattr", with_add, Mode::Threaded).expect("load");
    let Err(HostError::BugCheck(b)) = host.add_root_device("ROOT\\REQATTR") else {
        panic!("a parent in the request attributes must stop the machine");
    };
    assert_eq!(
        (b.code, b.params[0], b.params[3]),
        (0x1E, 0x8000_0003, 0x530A)
    );
}

/// A driver whose device does direct I/O: reads are filled with 0xD0 + offset, writes are
/// checked to hold 0x10 + offset, through the request buffers and the I/O manager's MDL.
mod direct {
    use super::*;

    pub unsafe extern "C" fn read(_q: WDFQUEUE, r: WDFREQUEST, len: usize) {
        let mut buf: PVOID = core::ptr::null_mut();
        // SAFETY: a read the driver owns; our out-parameter.
        let st = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRequestRetrieveOutputBuffer,
                r,
                len,
                &raw mut buf,
                core::ptr::null_mut()
            )
        };
        assert_eq!(st, STATUS_SUCCESS);
        // SAFETY: the caller's locked pages, `len` bytes (direct I/O).
        let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
        for (i, b) in out.iter_mut().enumerate() {
            *b = 0xD0u8.wrapping_add(i.to_le_bytes()[0]);
        }
        // SAFETY: completed once.
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRequestCompleteWithInformation,
                r,
                STATUS_SUCCESS,
                len as u64
            );
        }
    }

    pub unsafe extern "C" fn write(_q: WDFQUEUE, r: WDFREQUEST, len: usize) {
        let mut mdl: PMDL = core::ptr::null_mut();
        // SAFETY: a write the driver owns; our out-parameter.
        let st = unsafe {
            call_unsafe_wdf_function_binding!(WdfRequestRetrieveInputWdmMdl, r, &raw mut mdl)
        };
        assert_eq!(st, STATUS_SUCCESS);
        // SAFETY: the I/O manager's MDL of the caller's buffer.
        assert_eq!(unsafe { (*mdl).ByteCount } as usize, len);
        let mut buf: PVOID = core::ptr::null_mut();
        // SAFETY: as above.
        let st = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRequestRetrieveInputBuffer,
                r,
                len,
                &raw mut buf,
                core::ptr::null_mut()
            )
        };
        assert_eq!(st, STATUS_SUCCESS);
        // SAFETY: the caller's locked pages, `len` bytes.
        let data = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) };
        let ok = data
            .iter()
            .enumerate()
            .all(|(i, &b)| b == 0x10u8.wrapping_add(i.to_le_bytes()[0]));
        let status = if ok {
            STATUS_SUCCESS
        } else {
            STATUS_INVALID_PARAMETER
        };
        // SAFETY: completed once.
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRequestCompleteWithInformation,
                r,
                status,
                len as u64
            );
        }
    }

    pub unsafe extern "C" fn add(_d: WDFDRIVER, mut init: PWDFDEVICE_INIT) -> NTSTATUS {
        // SAFETY: the framework's init.
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfDeviceInitSetIoType,
                init,
                _WDF_DEVICE_IO_TYPE::WdfDeviceIoDirect
            );
        }
        let mut device: WDFDEVICE = core::ptr::null_mut();
        // SAFETY: the framework's init and our slot.
        let st = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfDeviceCreate,
                &raw mut init,
                WDF_NO_OBJECT_ATTRIBUTES,
                &raw mut device
            )
        };
        if st != STATUS_SUCCESS {
            return st;
        }
        let mut config = WDF_IO_QUEUE_CONFIG {
            Size: u32::try_from(size_of::<WDF_IO_QUEUE_CONFIG>()).unwrap_or(0),
            PowerManaged: _WDF_TRI_STATE::WdfUseDefault,
            DefaultQueue: 1,
            DispatchType: _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchSequential,
            EvtIoRead: Some(read),
            EvtIoWrite: Some(write),
            ..WDF_IO_QUEUE_CONFIG::default()
        };
        // SAFETY: the device and our config.
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfIoQueueCreate,
                device,
                &raw mut config,
                WDF_NO_OBJECT_ATTRIBUTES,
                core::ptr::null_mut()
            )
        }
    }

    pub unsafe extern "system" fn entry(d: PDRIVER_OBJECT, r: PCUNICODE_STRING) -> NTSTATUS {
        let mut config = WDF_DRIVER_CONFIG {
            Size: u32::try_from(size_of::<WDF_DRIVER_CONFIG>()).unwrap_or(0),
            EvtDriverDeviceAdd: Some(add),
            ..WDF_DRIVER_CONFIG::default()
        };
        // SAFETY: the loader's arguments and our config.
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfDriverCreate,
                d,
                r,
                WDF_NO_OBJECT_ATTRIBUTES,
                &raw mut config,
                core::ptr::null_mut()
            )
        }
    }
}

#[test]
fn direct_reads_and_writes_reach_the_callers_pages() {
    let m = Machine::new(Config::with_profile(Profile::VERIFIER));
    let host = Host::load_service(&m, "direct", direct::entry, Mode::Threaded).expect("load");
    let device = host.add_root_device("ROOT\\DIRECT").expect("add");
    host.start(&device).expect("start");
    let p = host.process();
    let h = p.open(&device).expect("open");
    let data: Vec<u8> = (0..5000usize)
        .map(|i| 0x10u8.wrapping_add(i.to_le_bytes()[0]))
        .collect();
    assert_eq!(p.write(&h, &data).expect("write"), 5000);
    let back = p.read(&h, 6000).expect("read");
    assert_eq!(back.len(), 6000);
    assert!(
        back.iter()
            .enumerate()
            .all(|(i, &b)| b == 0xD0u8.wrapping_add(i.to_le_bytes()[0]))
    );
    p.close(h).expect("close");
    host.remove(&device).expect("remove");
    host.unload()
        .expect("no MDL or pool left: the I/O manager unlocked and freed its MDLs");
}
