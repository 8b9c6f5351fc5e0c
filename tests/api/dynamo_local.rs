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
