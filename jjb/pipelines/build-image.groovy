// Declarative pipeline for the wrapper image built on jenkins/jenkins (see ../pipeline.yaml).
// Every sh step runs on the built-in node, where DOCKER_HOST is the nested daemon's socket.
pipeline {
    agent any
    options {
        disableConcurrentBuilds()
    }
    environment {
        IMAGE = 'pipeline-hello:latest'
        BASE = 'dindjobs/busybox-base'
    }
    stages {
        stage('Base image from the wrapper\'s busybox') {
            steps {
                sh '''
                    set -eu
                    if ! docker image inspect "$BASE" >/dev/null 2>&1; then
                        rm -rf base && mkdir base && cp /bin/busybox base/busybox
                        printf '%s\\n' 'FROM scratch' 'COPY busybox /bin/busybox' \
                            'RUN ["/bin/busybox", "--install", "-s", "/bin"]' 'CMD ["/bin/sh"]' > base/Dockerfile
                        docker build --network none -t "$BASE" base
                    fi
                '''
            }
        }
        stage('Build in the nested daemon') {
            steps {
                sh '''
                    set -eu
                    rm -rf context && mkdir context
                    printf '%s\\n' "FROM $BASE" 'RUN echo "hello from a pipeline in the nested daemon" > /hello.txt' \
                        'CMD ["cat", "/hello.txt"]' > context/Dockerfile
                    docker build --network none -t "$IMAGE" context
                    docker run --rm --network none "$IMAGE"
                '''
            }
        }
        stage('Evidence') {
            steps {
                sh '''
                    set -eu
                    echo "DINDJOBS-EVIDENCE daemon-id=$(docker info --format '{{.ID}}')"
                    echo "DINDJOBS-EVIDENCE image-id=$(docker image inspect --format '{{.Id}}' "$IMAGE")"
                    echo "DINDJOBS-EVIDENCE tag=$IMAGE"
                '''
            }
        }
    }
}
