//! The DynamoDB Local launcher outlives the thread that started it (a tokio
//! blocking-pool thread idles out after 10 s; `make run` once lost its JVM
//! that way) and stops when its handle is dropped.

use std::net::TcpStream;
use std::time::Duration;

use allotment_dev::dynamo_local::DynamoLocal;

#[test]
fn dynamodb_local_lives_as_long_as_its_handle_not_its_thread() {
    // GIVEN DynamoDB Local started by a thread that has since exited
    let local = std::thread::spawn(|| DynamoLocal::start(None)).join().unwrap().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // THEN it still serves
    assert!(TcpStream::connect(("127.0.0.1", local.port)).is_ok(), "DynamoDB Local died with its starting thread");
    // AND dropping the handle stops it
    let port = local.port;
    drop(local);
    std::thread::sleep(Duration::from_millis(300));
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "DynamoDB Local outlived its handle");
}

/// A DynamoDB port someone already listens on is refused with a sentence
/// naming DYNAMODB_PORT — never adopted (a second `make run` silently shared
/// the first one's table) — and no JVM is left behind.
#[test]
fn a_taken_port_is_refused_not_adopted() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = allotment_dev::dynamo_local::DynamoLocal::start(Some(port)).err().expect("refused");
    assert!(err.contains("DYNAMODB_PORT") && err.contains(&port.to_string()), "{err}");
}
